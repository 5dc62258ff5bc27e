//! The engine: runs one task per active session (connect, reconnect, dispatch its queue,
//! store what the connection reports) and publishes every committed event. Here: its state,
//! one slot per session, and the send path's entry points. Elsewhere:
//! - `lifecycle`: connect, disconnect, log out, delete; resume, drain, shut down;
//! - `session`: a session's task, and `pacing`: how fast it sends;
//! - `cluster`: the heartbeat, leases, and what other nodes ask;
//! - `connections`: number checks and read receipts through a session's open connection;
//! - `link_codes`: the QR or pairing code a linking session shows, and `sim_bridge`: sim
//!   messages to sessions on other nodes;
//! - `outbox`: the send path's writes (accepts, status changes, claims), in group commits;
//! - `changes`: the writes the API asks for, and `live`: the event feed;
//! - `owners`: the organization of each session, and organizations' quotas, for the send path.

mod changes;
mod cluster;
mod connections;
mod lifecycle;
mod link_codes;
mod live;
mod outbox;
mod owners;
mod pacing;
mod session;
mod sim_bridge;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::task::TaskTracker;
use wagate_connect::{Connection, Connector};
use wagate_core::{Clock, ConnectorKind, Event, Session, SessionId, Timestamp};
use wagate_store::{
    Accepted, Appended, Claim, ClaimRequest, Deferral, EventQuery, NewOutbound, SessionChange, StatusUpdate,
    Store, StoreError, StoreResult,
};

use crate::config::{ms, EngineConfig, EventsConfig, PacingConfig};
pub(crate) use crate::group_commit::CommitError;
use crate::tasks::Tasks;
pub(crate) use cluster::Membership;
pub(crate) use lifecycle::SessionError;
use lifecycle::{Command, Running};
pub(crate) use link_codes::LinkCode;
use live::LiveFeed;
pub(crate) use live::{EventFilter, StreamEnd, Subscription};
use outbox::Outbox;
pub(crate) use owners::OwnedSession;
use owners::Owners;
pub(crate) use sim_bridge::SimsElsewhere;

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
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

/// What this node holds for one session.
#[derive(Default)]
struct SessionSlot {
    /// Serialises connect, disconnect, logout and delete (see `lifecycle`).
    lifecycle: Arc<tokio::sync::Mutex<()>>,
    /// The task this node last started for it.
    task: Option<Running>,
    /// Its open connection.
    connection: Option<Arc<dyn Connection>>,
    /// The code it shows while linking.
    link_code: Option<LinkCode>,
}

impl SessionSlot {
    /// Its task, while that runs.
    fn running(&self) -> Option<&Running> {
        self.task.as_ref().filter(|task| task.is_alive())
    }
}

/// Shared by the API handlers and the session tasks.
pub(crate) struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    pacing: PacingConfig,
    node_id: String,
    membership: Membership,
    connectors: HashMap<ConnectorKind, Arc<dyn Connector>>,
    live: LiveFeed,
    stream_buffer: usize,
    /// Every session this node runs, ran, or was asked about.
    slots: Mutex<HashMap<SessionId, SessionSlot>>,
    /// The session tasks running on this node; each stops when told by a command.
    session_tasks: TaskTracker,
    /// The heartbeat, and what it hears from and asks of other nodes.
    cluster: Tasks,
    /// Bounds how many sessions connect at once, so a restart does not stampede WhatsApp.
    connecting: Semaphore,
    /// Accepted messages, status changes and claims of all sessions, committed in groups.
    outbox: Outbox,
    /// Sessions' organizations and organizations' quotas, remembered for the send path.
    owners: Owners,
}

impl Engine {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
        events: &EventsConfig,
        pacing: PacingConfig,
        membership: Membership,
        connectors: Vec<Arc<dyn Connector>>,
    ) -> Arc<Self> {
        let node_id = membership.info().id;
        let live = LiveFeed::start(
            Arc::clone(&store),
            Arc::clone(&clock),
            events.stream_buffer.get(),
            ms(events.poll_interval_ms),
        );
        let connecting = Semaphore::new(config.resume_concurrency.get());
        let outbox = Outbox::start(&store, &clock, ms(config.send_lease_ms));
        Arc::new(Self {
            outbox,
            owners: Owners::default(),
            store,
            clock,
            config,
            pacing,
            node_id,
            membership,
            connectors: connectors.into_iter().map(|c| (c.kind(), c)).collect(),
            live,
            stream_buffer: events.stream_buffer.get(),
            slots: Mutex::new(HashMap::new()),
            session_tasks: TaskTracker::new(),
            cluster: Tasks::default(),
            connecting,
        })
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn has_connector(&self, kind: ConnectorKind) -> bool {
        self.connectors.contains_key(&kind)
    }

    /// Whether the engine's background workers are alive.
    pub(crate) fn workers_running(&self) -> bool {
        self.live.is_running()
    }

    /// Live events in log order, from the moment of subscribing.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// A subscriber's stream: the events after `after` (or from now), then live ones.
    pub(crate) async fn subscription(
        &self,
        filter: EventFilter,
        after: Option<wagate_core::EventId>,
    ) -> Result<Subscription, StoreError> {
        Subscription::new(Arc::clone(&self.store), self.live.subscribe(), self.stream_buffer, filter, after)
            .await
    }

    /// Events from the log, including every one committed before the call: a client reads its
    /// own writes.
    pub(crate) async fn read_events(&self, query: EventQuery) -> StoreResult<Vec<Event>> {
        self.live.number().await;
        self.store.list_events(query).await
    }

    /// Whether this node numbered event `id` (see `LiveFeed::numbered_here`): asked in log order.
    pub(crate) fn numbered_here(&self, id: wagate_core::EventId) -> bool {
        self.live.numbered_here(id)
    }

    /// Announces committed events to live subscribers (which read them from the log, in order,
    /// once it has numbered them).
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = Appended>) {
        if events.into_iter().next().is_some() {
            self.live.wake();
        }
    }

    /// The sessions whose task runs on this node, with the fencing token of their lease.
    fn running_here(&self) -> Vec<(SessionId, i64)> {
        let slots = self.slots.lock();
        slots.iter().filter_map(|(id, slot)| Some((id.clone(), slot.running()?.lease))).collect()
    }

    /// Changes a session and publishes its event.
    async fn change_session(&self, id: &SessionId, mut change: SessionChange) -> Result<Session, StoreError> {
        // Status events say which node runs the session.
        change.node_id = Some(self.node_id.clone());
        let (session, event) = self.store.update_session(id, change, self.now()).await?;
        self.publish(event);
        Ok(session)
    }

    /// The session `id` with its organization (remembered: see `owners`); None when it does
    /// not exist. `fresh` reads it from the database whatever is remembered.
    pub(crate) async fn owned_session(
        &self,
        id: &SessionId,
        fresh: bool,
    ) -> StoreResult<Option<OwnedSession>> {
        self.owners.session(self.store.as_ref(), id, fresh).await
    }

    /// An organization's daily message quota (remembered for a second: see `owners`).
    pub(crate) async fn daily_quota(&self, org: &wagate_core::OrgId) -> StoreResult<Option<u32>> {
        self.owners.daily_quota(self.store.as_ref(), org, self.now()).await
    }

    /// Forgets what is remembered of an organization after it was changed.
    pub(crate) fn org_changed(&self, org: &wagate_core::OrgId) {
        self.owners.forget_org(org);
    }

    /// Accepts an outbound message: committed (queued) before this returns. A session that
    /// does not exist, or is not of `new.org_id`'s organization, is not found.
    pub(crate) async fn accept(&self, new: NewOutbound) -> Result<Accepted, AcceptError> {
        let session_id = new.session_id.clone();
        let accepted = match self.outbox.accept(new).await? {
            Ok(accepted) => accepted,
            Err(StoreError::NotFound(_)) => {
                self.owners.forget_session(&session_id);
                return Err(AcceptError::SessionNotFound);
            }
            Err(e) => return Err(CommitError::Store(e.to_string()).into()),
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
    ) -> Result<Claim, CommitError> {
        let request = ClaimRequest { session_id: session_id.clone(), lease, limit, defer };
        let mut claim = self.outbox.claim(request).await?;
        self.publish(std::mem::take(&mut claim.events));
        Ok(claim)
    }

    /// Applies status changes (committed with those of other sessions) and publishes them.
    async fn apply_statuses(&self, updates: Vec<StatusUpdate>) -> Result<(), CommitError> {
        if updates.is_empty() {
            return Ok(());
        }
        for result in self.outbox.apply(updates).await? {
            match result {
                Ok(events) => self.publish(events),
                Err(e) => tracing::warn!(error = %e, "status update refused"),
            }
        }
        Ok(())
    }

    /// Tells a session's task that work arrived, on whichever node runs it. Another node's
    /// session is woken by a signal, sent with the others waiting (`cluster::send_wakes`).
    pub(crate) fn wake(&self, id: &SessionId) {
        // Alone on the database (SQLite), a session not running here is not running at all.
        if !self.wake_local(id) && self.membership.peers.load(std::sync::atomic::Ordering::Relaxed) {
            self.membership.wake_elsewhere(id);
        }
    }

    /// Wakes the session's task if it runs here; false if it does not.
    fn wake_local(&self, id: &SessionId) -> bool {
        let slots = self.slots.lock();
        slots.get(id).and_then(SessionSlot::running).map(|running| running.wake.notify_one()).is_some()
    }
}
