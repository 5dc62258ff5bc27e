//! A session's life on this node: connect, disconnect, log out and delete it (carried out by
//! the node that runs it, this one or another), and the node's own: resume, drain, shut down.

use std::sync::Arc;

use futures_util::future::{BoxFuture, Shared};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::AbortHandle;
use wagate_connect::Connector;
use wagate_core::{EventType, PhoneNumber, RemoteCommand, Session, SessionId, SessionStatus, Signal};
use wagate_store::{Credentials, SessionChange, StoreError};

use super::{session, Engine, EventFilter};

/// Why the engine refused a session command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("session not found")]
    NotFound,
    #[error("session is already {0}")]
    Active(&'static str),
    #[error("session is not connected")]
    NotRunning,
    #[error("this node is draining and takes no sessions; connect through another node")]
    Draining,
    #[error("session is not linked")]
    NotLinked,
    #[error("connector `{0}` is not available on this server")]
    NoConnector(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) enum Command {
    /// Close the connection and stay offline.
    Disconnect,
    /// Unlink the device and forget its credentials.
    Logout,
    /// Close the connection and let the session run again elsewhere (or here on the next
    /// start): the server is stopping, or the session moves to another node. Says why.
    Shutdown(&'static str),
}

/// The task running a session on this node.
pub(super) struct Running {
    /// The fencing token of the session's lease.
    pub(super) lease: i64,
    commands: mpsc::UnboundedSender<(Command, oneshot::Sender<()>)>,
    /// Tells the task that work arrived.
    pub(super) wake: Arc<Notify>,
    abort: AbortHandle,
    /// Ready once the task has ended, however it ended.
    ended: Shared<BoxFuture<'static, ()>>,
}

impl Running {
    pub(super) fn is_alive(&self) -> bool {
        !self.abort.is_finished()
    }

    /// Stops the task at once, without another write: its lease passed to another node.
    pub(super) fn abort(self) {
        self.abort.abort();
    }
}

impl Engine {
    /// The session's lifecycle lock: serialises connect, disconnect, logout and delete, so
    /// that two requests cannot both start (or both end) its task.
    fn lifecycle(&self, id: &SessionId) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(&self.slots.lock().entry(id.clone()).or_default().lifecycle)
    }

    /// Starts connecting a session; it stays connected (across restarts) until disconnected.
    pub(crate) async fn connect(
        self: &Arc<Self>,
        id: &SessionId,
        pairing_phone: Option<PhoneNumber>,
    ) -> Result<Session, SessionError> {
        let lifecycle = self.lifecycle(id);
        let _one_at_a_time = lifecycle.lock().await;
        let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
        let connector = self
            .connectors
            .get(&session.connector)
            .cloned()
            .ok_or(SessionError::NoConnector(session.connector.as_str()))?;
        let running = self.slots.lock().get(id).and_then(|slot| slot.running()).map(|r| r.ended.clone());
        if let Some(ended) = running {
            if session.status.is_active() || session.auto_connect {
                return Err(SessionError::Active(session.status.as_str()));
            }
            // The task has recorded its end and is giving its lease back (which lapses
            // after a TTL in any case).
            let _ = tokio::time::timeout(self.membership.ttl().to_std().unwrap_or_default(), ended).await;
        }
        if self.membership.draining() {
            return Err(SessionError::Draining);
        }
        let now = self.now();
        let node = self.membership.info().id;
        let taken =
            self.store.acquire_sessions(&node, now, now + self.membership.ttl(), 1, false, Some(id)).await?;
        let Some((_, lease)) = taken.into_iter().next() else {
            // Another node runs it.
            return Err(SessionError::Active(session.status.as_str()));
        };
        let session = self
            .change_session(
                id,
                SessionChange {
                    status: Some(SessionStatus::Connecting),
                    auto_connect: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        self.spawn_session(session.clone(), lease.token, connector, pairing_phone);
        Ok(session)
    }

    pub(super) fn spawn_session(
        self: &Arc<Self>,
        session: Session,
        lease: i64,
        connector: Arc<dyn Connector>,
        pairing_phone: Option<PhoneNumber>,
    ) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let id = session.id.clone();
        let task = self.session_tasks.spawn(session::run(
            Arc::clone(self),
            session,
            lease,
            connector,
            pairing_phone,
            command_rx,
            Arc::clone(&wake),
        ));
        let abort = task.abort_handle();
        let ended = task.map(drop).boxed().shared();
        let running = Running { lease, commands, wake, abort, ended };
        // A task started here before under an older lease (the heartbeat took the session as
        // `connect` did) is fenced off by the newer one: it stops rather than run on unseen.
        let earlier = self.slots.lock().entry(id).or_default().task.replace(running);
        if let Some(earlier) = earlier {
            earlier.abort();
        }
    }

    /// Sends a command to a session running here and waits until it is carried out.
    pub(super) async fn command(&self, id: &SessionId, command: Command) -> bool {
        let (done, finished) = oneshot::channel();
        let sent = (self.slots.lock().get(id).and_then(|slot| slot.task.as_ref()))
            .is_some_and(|running| running.commands.send((command, done)).is_ok());
        sent && finished.await.is_ok()
    }

    /// Asks the node running a session elsewhere to carry out `command` and waits (up to a
    /// lease TTL) until the session shows it `done`. False when no other node runs it.
    async fn command_remote(
        &self,
        id: &SessionId,
        command: RemoteCommand,
        done: impl Fn(&Session) -> bool,
    ) -> Result<bool, SessionError> {
        let Some(owner) = self.store.request_command(id, command, self.now()).await? else {
            return Ok(false);
        };
        if owner == self.node_id {
            return Ok(false);
        }
        // Subscribed before the session is read: no status change after that read slips past.
        let filter = EventFilter {
            session_id: Some(id.clone()),
            types: vec![EventType::SessionStatus],
            ..EventFilter::default()
        };
        let mut changes = self.subscription(filter, None).await?;
        self.store.signal(&[Signal::Beat]).await?;
        let deadline = tokio::time::Instant::now() + self.membership.ttl().to_std().unwrap_or_default();
        loop {
            let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
            if done(&session) {
                return Ok(true);
            }
            match tokio::time::timeout_at(deadline, changes.next()).await {
                Ok(Ok(_)) => {}
                // Past the deadline, or the feed ended (this node is stopping): answer as it is.
                Ok(Err(_)) | Err(_) => return Ok(true),
            }
        }
    }

    /// Closes a session's connection; it stays linked and offline until connected again.
    pub(crate) async fn disconnect(&self, id: &SessionId) -> Result<Session, SessionError> {
        let lifecycle = self.lifecycle(id);
        let _one_at_a_time = lifecycle.lock().await;
        let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
        let stopped = |s: &Session| !s.auto_connect && !s.status.is_active();
        if !self.command(id, Command::Disconnect).await
            && !self.command_remote(id, RemoteCommand::Disconnect, stopped).await?
        {
            if !session.auto_connect && !session.status.is_active() {
                return Err(SessionError::NotRunning);
            }
            return Ok(self
                .change_session(
                    id,
                    SessionChange {
                        status: Some(SessionStatus::Disconnected),
                        reason: Some("disconnected by request".into()),
                        auto_connect: Some(false),
                        ..Default::default()
                    },
                )
                .await?);
        }
        self.store.get_session(id).await?.ok_or(SessionError::NotFound)
    }

    /// Unlinks a session's device; connecting again needs a new QR code.
    pub(crate) async fn logout(&self, id: &SessionId) -> Result<Session, SessionError> {
        let lifecycle = self.lifecycle(id);
        let _one_at_a_time = lifecycle.lock().await;
        let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
        let linked = session.credentials.is_some();
        let logged_out = |s: &Session| s.status == SessionStatus::LoggedOut;
        if !self.command(id, Command::Logout).await
            && !self.command_remote(id, RemoteCommand::Logout, logged_out).await?
        {
            if !linked {
                return Err(SessionError::NotLinked);
            }
            self.logged_out(id, "logged out by request".into()).await?;
        }
        // The task may have been between connections: make sure the connector forgets too.
        self.forget(&session).await;
        self.store.get_session(id).await?.ok_or(SessionError::NotFound)
    }

    /// Makes the session's connector forget what it kept for the session.
    pub(super) async fn forget(&self, session: &Session) {
        if let Some(connector) = self.connectors.get(&session.connector) {
            connector.forget(&session.id).await;
        }
    }

    /// Records that the session is logged out: unlinked, credentials cleared, offline.
    pub(super) async fn logged_out(&self, id: &SessionId, reason: String) -> Result<Session, StoreError> {
        self.set_link_code(id, None);
        self.change_session(
            id,
            SessionChange {
                status: Some(SessionStatus::LoggedOut),
                reason: Some(reason),
                credentials: Credentials::Clear,
                auto_connect: Some(false),
                ..Default::default()
            },
        )
        .await
    }

    /// Stops a session and deletes it with its messages.
    pub(crate) async fn delete(&self, id: &SessionId) -> Result<(), SessionError> {
        let lifecycle = self.lifecycle(id);
        let _one_at_a_time = lifecycle.lock().await;
        let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
        if !self.command(id, Command::Logout).await {
            self.command_remote(id, RemoteCommand::Logout, |s| s.status == SessionStatus::LoggedOut).await?;
        }
        self.forget(&session).await;
        self.slots.lock().remove(id);
        self.owners.forget_session(id);
        if self.store.delete_session(id).await? {
            // Other nodes forget its organization too; the accept transaction refuses what
            // reaches them before the signal does.
            if self.membership.peers.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = self.store.signal(&[Signal::Deleted(id.clone())]).await;
            }
            Ok(())
        } else {
            Err(SessionError::NotFound)
        }
    }

    /// Joins the cluster: connects the sessions this node held before it stopped and its
    /// share of those nobody runs.
    pub(crate) async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        self.beat(true).await
    }

    /// Stops taking sessions and hands those it runs over to other nodes.
    pub(crate) async fn drain(self: &Arc<Self>) {
        self.membership.set_draining();
        if let Err(e) = self.beat(false).await {
            tracing::error!(error = %e, "could not announce the drain");
        }
    }

    /// Stops the heartbeat and taking sessions, closes every session's connection after the
    /// sends in flight and gives its lease back (other nodes take the sessions at once; alone,
    /// this node resumes them on its next start), then stops the writers.
    pub(crate) async fn shutdown(self: &Arc<Self>) {
        self.cluster.stop().await;
        self.membership.set_draining();
        self.hand_over(None, "server stopped").await;
        self.session_tasks.close();
        self.session_tasks.wait().await;
        self.outbox.stop().await;
        self.live.stop().await;
    }
}
