//! The engine: runs one task per active session (connect, reconnect, dispatch its queue,
//! store what the connection reports) and publishes every committed event.

mod changes;
mod cluster;
mod live;
mod pacing;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc, oneshot, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use wagate_connect::{Connection, Connector, NumberCheck, ReadMessage, SendError, Target};
use wagate_core::{
    Clock, ConnectorKind, Event, EventData, PhoneNumber, Session, SessionId, SessionStatus,
    SessionStatusData, Timestamp,
};
use wagate_store::{
    Accepted, ClaimRequest, Claimed, Credentials, Deferral, NewOutbound, SessionChange, StatusUpdate, Store,
    StoreError, StoreResult,
};

use crate::config::{ms, EngineConfig, EventsConfig, PacingConfig};
pub use crate::group_commit::CommitError;
use crate::group_commit::GroupCommit;
use crate::tasks::Tasks;
pub use cluster::Membership;
use live::LiveFeed;
pub use live::{EventFilter, StreamEnd, Subscription};

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("session not found")]
    SessionNotFound,
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// What a session received, as the store keeps it.
fn new_inbound(session: &Session, message: wagate_connect::InboundMessage) -> wagate_store::NewInbound {
    wagate_store::NewInbound {
        session_id: session.id.clone(),
        wa_id: message.wa_id,
        chat: message.chat.to_string(),
        from: message.from.to_string(),
        to: session.jid.clone().unwrap_or_default(),
        content: message.content,
        at: message.at,
        reply_to: message.reply_to,
        mentions: message.mentions.iter().map(wagate_core::Jid::to_string).collect(),
        sender: (message.from_lid.is_some() || message.push_name.is_some()).then(|| wagate_core::Sender {
            lid: message.from_lid.map(|jid| jid.to_string()),
            push_name: message.push_name,
        }),
    }
}

/// The sim sessions of every node, reached through the store: a message from this node's
/// sim network to a sim number linked on another node is stored in that session's log.
pub struct SimsElsewhere {
    engine: std::sync::Weak<Engine>,
}

impl SimsElsewhere {
    pub fn new(engine: &Arc<Engine>) -> Self {
        Self { engine: Arc::downgrade(engine) }
    }
}

#[async_trait::async_trait]
impl wagate_connect::sim::SimElsewhere for SimsElsewhere {
    async fn deliver(&self, to: &PhoneNumber, message: wagate_connect::InboundMessage) -> bool {
        let Some(engine) = self.engine.upgrade() else { return false };
        let session = match engine.store.find_linked_session(ConnectorKind::Sim, to.as_str()).await {
            Ok(Some(session)) => session,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "could not look up a sim number");
                return false;
            }
        };
        match engine.store.store_inbound(vec![new_inbound(&session, message)], engine.now()).await {
            Ok(events) => {
                engine.publish(events);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, session_id = %session.id, "could not store a sim message");
                false
            }
        }
    }
}

/// A group commit that writes its batches with `write`, at the clock's time.
fn writer<I, O, W, Fut>(store: &Arc<dyn Store>, clock: &Arc<dyn Clock>, write: W) -> GroupCommit<I, O>
where
    I: Send + 'static,
    O: Send + 'static,
    W: Fn(Arc<dyn Store>, Vec<I>, Timestamp) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = StoreResult<Vec<O>>> + Send + 'static,
{
    let (store, clock) = (Arc::clone(store), Arc::clone(clock));
    GroupCommit::start(move |batch| write(Arc::clone(&store), batch, clock.now()))
}

/// A QR or pairing code a linking session shows.
#[derive(Debug, Clone)]
pub enum LinkCode {
    Qr { code: String, expires_at: Timestamp },
    Pairing { code: String, expires_at: Timestamp },
}

/// Why the engine refused a session command.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
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

enum Command {
    /// Close the connection and stay offline.
    Disconnect,
    /// Unlink the device and forget its credentials.
    Logout,
    /// Close the connection and let the session run again elsewhere (or here on the next
    /// start): the server is stopping, or the session moves to another node. Says why.
    Shutdown(&'static str),
}

struct Running {
    /// The fencing token of the session's lease.
    lease: i64,
    commands: mpsc::UnboundedSender<(Command, oneshot::Sender<()>)>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

/// Shared by the API handlers and the session tasks.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    pacing: PacingConfig,
    node_id: String,
    membership: Membership,
    connectors: HashMap<ConnectorKind, Arc<dyn Connector>>,
    live: LiveFeed,
    stream_buffer: usize,
    sessions: Mutex<HashMap<SessionId, Running>>,
    link_codes: Mutex<HashMap<SessionId, LinkCode>>,
    /// The open connection of each session connected on this node.
    connections: Mutex<HashMap<SessionId, Arc<dyn Connection>>>,
    /// Per session: serialises connect, disconnect, logout and delete, so that two requests
    /// cannot both start (or both end) its task.
    lifecycle: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
    /// The session tasks running on this node; each stops when told by a command.
    session_tasks: TaskTracker,
    /// The heartbeat, and what it hears from and asks of other nodes.
    cluster: Tasks,
    /// Bounds how many sessions connect at once, so a restart does not stampede WhatsApp.
    connecting: Semaphore,
    /// Accepted messages, committed in groups.
    accepts: GroupCommit<NewOutbound, StoreResult<Accepted>>,
    /// Claims of queued messages by all sessions, committed in groups.
    claims: GroupCommit<ClaimRequest, (Vec<Claimed>, Vec<Event>)>,
    /// Status changes of all sessions (sends and receipts), committed in groups.
    statuses: GroupCommit<StatusUpdate, StoreResult<Vec<Event>>>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
        events: &EventsConfig,
        pacing: PacingConfig,
        membership: Membership,
        connectors: Vec<Arc<dyn Connector>>,
    ) -> Arc<Self> {
        let node_id = membership.info().id;
        let live = LiveFeed::start(Arc::clone(&store), events.stream_buffer, ms(events.poll_interval_ms));
        let connecting = Semaphore::new(config.resume_concurrency);
        let lease = ms(config.send_lease_ms);
        let accepts =
            writer(
                &store,
                &clock,
                |store, batch, now| async move { store.accept_outbound(batch, now).await },
            );
        let claims = writer(&store, &clock, move |store, batch, now| async move {
            store.claim_outbound(batch, now, now + lease).await
        });
        let statuses =
            writer(&store, &clock, |store, batch, now| async move { store.apply_statuses(batch, now).await });
        Arc::new(Self {
            accepts,
            claims,
            statuses,
            store,
            clock,
            config,
            pacing,
            node_id,
            membership,
            connectors: connectors.into_iter().map(|c| (c.kind(), c)).collect(),
            live,
            stream_buffer: events.stream_buffer,
            sessions: Mutex::new(HashMap::new()),
            link_codes: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            lifecycle: Mutex::new(HashMap::new()),
            session_tasks: TaskTracker::new(),
            cluster: Tasks::default(),
            connecting,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn has_connector(&self, kind: ConnectorKind) -> bool {
        self.connectors.contains_key(&kind)
    }

    /// Whether the engine's background workers are alive.
    pub fn workers_running(&self) -> bool {
        self.live.is_running()
    }

    /// Live events in log order, from the moment of subscribing.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// A subscriber's stream: the events after `after` (or from now), then live ones.
    pub async fn subscription(
        &self,
        filter: EventFilter,
        after: Option<wagate_core::EventId>,
    ) -> Result<Subscription, StoreError> {
        Subscription::new(Arc::clone(&self.store), self.live.subscribe(), self.stream_buffer, filter, after)
            .await
    }

    /// Announces committed events to live subscribers (which read them from the log, in order).
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = Event>) {
        if events.into_iter().next().is_some() {
            self.live.wake();
        }
    }

    fn running(&self) -> MutexGuard<'_, HashMap<SessionId, Running>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live_connections(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<dyn Connection>>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session's open connection on this node.
    async fn connection(&self, id: &SessionId) -> Result<Arc<dyn Connection>, SessionError> {
        let connection = self.live_connections().get(id).cloned();
        match connection {
            Some(connection) => Ok(connection),
            None => Err(match self.store.get_session(id).await? {
                None => SessionError::NotFound,
                Some(_) => SessionError::NotRunning,
            }),
        }
    }

    /// Asks WhatsApp, through the session's connection on this node, which numbers have it.
    pub async fn check_numbers(
        &self,
        id: &SessionId,
        phones: &[PhoneNumber],
    ) -> Result<Result<Vec<NumberCheck>, SendError>, SessionError> {
        Ok(self.connection(id).await?.check_numbers(phones).await)
    }

    /// Sends read receipts for received messages of one chat, through the session's connection
    /// on this node.
    pub async fn mark_read(
        &self,
        id: &SessionId,
        chat: &wagate_core::Jid,
        messages: &[ReadMessage],
    ) -> Result<Result<(), SendError>, SessionError> {
        Ok(self.connection(id).await?.mark_read(chat, messages).await)
    }

    /// For a reaction, edit or revoke of a message of the same session given by wagate's id:
    /// WhatsApp's id for it and whether the session sent it.
    async fn target(&self, message: &wagate_core::Message) -> Option<Target> {
        use wagate_core::MessageContent;
        let named = match &message.content {
            MessageContent::Reaction { reaction } => &reaction.message_id,
            MessageContent::Edit { edit } => &edit.message_id,
            MessageContent::Revoke { revoke } => &revoke.message_id,
            _ => return None,
        };
        let id = wagate_core::MessageId::parse(named).ok()?;
        let target = self.store.get_message(&id).await.ok().flatten()?;
        (target.session_id == message.session_id).then_some(())?;
        Some(Target { wa_id: target.wa_id?, from_me: target.direction == wagate_core::Direction::Out })
    }

    fn codes(&self) -> MutexGuard<'_, HashMap<SessionId, LinkCode>> {
        self.link_codes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lifecycle(&self, id: &SessionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(id.clone()).or_default())
    }

    /// The code a linking session shows now: this node's if it runs the session, else the
    /// last one the node running it recorded in the log (while it has not expired).
    pub async fn link_code(&self, session: &Session) -> Result<Option<LinkCode>, StoreError> {
        if let Some(code) = self.codes().get(&session.id).cloned() {
            return Ok(Some(code));
        }
        if !matches!(session.status, SessionStatus::Qr | SessionStatus::PairingCode) {
            return Ok(None);
        }
        let mut query = wagate_store::EventQuery {
            session_id: Some(session.id.clone()),
            types: vec![wagate_core::EventType::SessionQr, wagate_core::EventType::SessionStatus],
            limit: 1000,
            ..Default::default()
        };
        let mut latest = None;
        loop {
            let page = self.store.list_events(query.clone()).await?;
            let Some(last) = page.last() else { break };
            query.after = Some(last.id);
            for event in page {
                latest = match event.data {
                    EventData::SessionQr(qr) => {
                        Some(LinkCode::Qr { code: qr.code, expires_at: qr.expires_at })
                    }
                    EventData::SessionStatus(SessionStatusData {
                        pairing_code: Some(code),
                        expires_at: Some(expires_at),
                        ..
                    }) => Some(LinkCode::Pairing { code, expires_at }),
                    _ => latest,
                };
            }
        }
        Ok(latest.filter(|code| match code {
            LinkCode::Qr { expires_at, .. } | LinkCode::Pairing { expires_at, .. } => {
                *expires_at > self.now()
            }
        }))
    }

    /// Changes a session and publishes its event.
    async fn change_session(&self, id: &SessionId, mut change: SessionChange) -> Result<Session, StoreError> {
        // Status events say which node runs the session.
        change.node_id = Some(self.node_id.clone());
        let (session, event) = self.store.update_session(id, change, self.now()).await?;
        self.publish(event);
        Ok(session)
    }

    /// Accepts an outbound message: committed (queued) before this returns.
    pub async fn accept(&self, new: NewOutbound) -> Result<Accepted, AcceptError> {
        let session_id = new.session_id.clone();
        let result = self.accepts.submit(vec![new]).await?.pop();
        let accepted = match result {
            Some(Ok(accepted)) => accepted,
            Some(Err(StoreError::NotFound(_))) => return Err(AcceptError::SessionNotFound),
            Some(Err(e)) => return Err(CommitError::Store(e.to_string()).into()),
            None => return Err(CommitError::Store("no answer for an accepted message".into()).into()),
        };
        self.publish(accepted.event.clone());
        if accepted.created {
            self.wake(&session_id);
        }
        Ok(accepted)
    }

    /// Claims up to `limit` of a session's due messages (committed with other sessions'
    /// claims), marking them `sending`, after making what pacing caps hold back wait.
    async fn claim(
        &self,
        session_id: &SessionId,
        lease: i64,
        limit: u32,
        defer: Vec<Deferral>,
    ) -> Result<Vec<Claimed>, CommitError> {
        let request = ClaimRequest { session_id: session_id.clone(), lease, limit, defer };
        let (claimed, events) = self.claims.submit(vec![request]).await?.pop().unwrap_or_default();
        self.publish(events);
        Ok(claimed)
    }

    /// Applies status changes (committed with those of other sessions) and publishes them.
    async fn apply_statuses(&self, updates: Vec<StatusUpdate>) -> Result<(), CommitError> {
        if updates.is_empty() {
            return Ok(());
        }
        for result in self.statuses.submit(updates).await? {
            match result {
                Ok(events) => self.publish(events),
                Err(e) => tracing::warn!(error = %e, "status update refused"),
            }
        }
        Ok(())
    }

    /// Tells a session's task that work arrived, on whichever node runs it.
    pub(crate) fn wake(&self, id: &SessionId) {
        // Alone on the database (SQLite), a session not running here is not running at all.
        if !self.wake_local(id) && self.membership.peers.load(std::sync::atomic::Ordering::Relaxed) {
            let store = Arc::clone(&self.store);
            let signal = format!("wake {id}");
            self.cluster.spawn(async move {
                let _ = store.signal(&signal).await;
            });
        }
    }

    /// Wakes the session's task if it runs here; false if it does not.
    fn wake_local(&self, id: &SessionId) -> bool {
        match self.running().get(id) {
            Some(running) if !running.task.is_finished() => {
                running.wake.notify_one();
                true
            }
            _ => false,
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Stops taking sessions and hands those it runs over to other nodes.
    pub async fn drain(self: &Arc<Self>) {
        self.membership.set_draining();
        if let Err(e) = self.beat(false).await {
            tracing::error!(error = %e, "could not announce the drain");
        }
    }

    /// The heartbeat's period and the lease TTL, for listing nodes.
    pub fn lease_ttl(&self) -> chrono::Duration {
        self.membership.ttl()
    }

    /// Starts connecting a session; it stays connected (across restarts) until disconnected.
    pub async fn connect(
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
        // A task that has just recorded its end may still be giving its lease back.
        for _ in 0..50 {
            let ending = !session.status.is_active() && !session.auto_connect;
            match self.running().get(id) {
                Some(running) if !running.task.is_finished() && !ending => {
                    return Err(SessionError::Active(session.status.as_str()));
                }
                Some(running) if !running.task.is_finished() => {}
                _ => break,
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
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

    fn spawn_session(
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
        self.running().insert(id, Running { lease, commands, wake, task });
    }

    /// Sends a command to a running session and waits until it is carried out.
    async fn command(&self, id: &SessionId, command: Command) -> bool {
        let (done, finished) = oneshot::channel();
        let sent = match self.running().get(id) {
            Some(running) => running.commands.send((command, done)).is_ok(),
            None => false,
        };
        sent && finished.await.is_ok()
    }

    /// Asks the node running a session elsewhere to carry out `command` and waits (up to a
    /// lease TTL) until the session shows it `done`. False when no other node runs it.
    async fn command_remote(
        &self,
        id: &SessionId,
        command: &str,
        done: impl Fn(&Session) -> bool,
    ) -> Result<bool, SessionError> {
        let Some(owner) = self.store.request_command(id, command, self.now()).await? else {
            return Ok(false);
        };
        if owner == self.node_id {
            return Ok(false);
        }
        self.store.signal("beat").await?;
        let deadline = tokio::time::Instant::now() + self.membership.ttl().to_std().unwrap_or_default();
        loop {
            let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
            if done(&session) || tokio::time::Instant::now() >= deadline {
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Closes a session's connection; it stays linked and offline until connected again.
    pub async fn disconnect(&self, id: &SessionId) -> Result<Session, SessionError> {
        let lifecycle = self.lifecycle(id);
        let _one_at_a_time = lifecycle.lock().await;
        let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
        let stopped = |s: &Session| !s.auto_connect && !s.status.is_active();
        if !self.command(id, Command::Disconnect).await
            && !self.command_remote(id, "disconnect", stopped).await?
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
    pub async fn logout(&self, id: &SessionId) -> Result<Session, SessionError> {
        let lifecycle = self.lifecycle(id);
        let _one_at_a_time = lifecycle.lock().await;
        let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
        let linked = session.credentials.is_some();
        let logged_out = |s: &Session| s.status == SessionStatus::LoggedOut;
        if !self.command(id, Command::Logout).await && !self.command_remote(id, "logout", logged_out).await? {
            if !linked {
                return Err(SessionError::NotLinked);
            }
            self.logged_out(id, "logged out by request".into()).await?;
        }
        // The task may have been between connections: make sure the connector forgets too.
        self.forget(&session).await;
        self.store.get_session(id).await?.ok_or(SessionError::NotFound)
    }

    async fn forget(&self, session: &Session) {
        if let Some(connector) = self.connectors.get(&session.connector) {
            connector.forget(&session.id).await;
        }
    }

    async fn logged_out(&self, id: &SessionId, reason: String) -> Result<Session, StoreError> {
        self.codes().remove(id);
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
    pub async fn delete(&self, id: &SessionId) -> Result<(), SessionError> {
        let lifecycle = self.lifecycle(id);
        let _one_at_a_time = lifecycle.lock().await;
        let session = self.store.get_session(id).await?.ok_or(SessionError::NotFound)?;
        if !self.command(id, Command::Logout).await {
            self.command_remote(id, "logout", |s| s.status == SessionStatus::LoggedOut).await?;
        }
        self.forget(&session).await;
        self.running().remove(id);
        self.codes().remove(id);
        self.lifecycle.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        if self.store.delete_session(id).await? {
            Ok(())
        } else {
            Err(SessionError::NotFound)
        }
    }

    /// Joins the cluster: connects the sessions this node held before it stopped and its
    /// share of those nobody runs.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        self.beat(true).await
    }

    /// Stops the heartbeat and taking sessions, closes every session's connection after the
    /// sends in flight and gives its lease back (other nodes take the sessions at once; alone,
    /// this node resumes them on its next start), then stops the writers.
    pub async fn shutdown(self: &Arc<Self>) {
        self.cluster.stop().await;
        self.membership.set_draining();
        self.hand_over(None, "server stopped").await;
        self.session_tasks.close();
        self.session_tasks.wait().await;
        self.accepts.stop().await;
        self.claims.stop().await;
        self.statuses.stop().await;
        self.live.stop().await;
    }
}
