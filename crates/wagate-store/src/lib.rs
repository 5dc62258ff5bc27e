//! wagate-store: the `Store` trait, everything wagate keeps durably, and its SQLite and
//! PostgreSQL implementations.

// Each backend compiles the SQL modules under `sql/` against its own database type, on
// purpose: one copy of the SQL, two stores.
#![allow(clippy::duplicate_mod)]

mod postgres;
mod sqlite;
pub mod testing;

use async_trait::async_trait;
use wagate_core::{
    Attempt, Campaign, CampaignAction, CampaignId, CampaignState, Chat, ConnectorKind, Contact, Delivery,
    DeliveryId, DeliveryStatus, Direction, Event, EventData, EventId, EventType, Hook, HookId, Jid, Media,
    MediaId, Message, MessageContent, MessageId, MessageStatus, ReplyContext, Sender, Session, SessionId,
    SessionStatus, Template, Timestamp, Webhook, WebhookId,
};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error(transparent)]
    IllegalTransition(#[from] wagate_core::IllegalTransition),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Another node took over the session: this node's lease is no longer current.
    #[error("the session's lease has passed to another node")]
    Fenced,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Why the store is not ready to serve.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the database cannot be reached: {0}")]
    Database(String),
    #[error("the database schema is not current: {0}")]
    Migrations(String),
}

impl NotReady {
    /// The name of the failing check.
    pub fn check(&self) -> &'static str {
        match self {
            NotReady::Database(_) => "database",
            NotReady::Migrations(_) => "migrations",
        }
    }
}

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub connector: ConnectorKind,
    pub name: Option<String>,
    pub config: serde_json::Value,
    pub metadata: serde_json::Value,
}

/// A change to a session's connection state, written with its `session.status` event.
#[derive(Debug, Clone, Default)]
pub struct SessionChange {
    pub status: Option<SessionStatus>,
    /// Replaces the status reason (None clears it) whenever `status` is set.
    pub reason: Option<String>,
    pub phone: Option<String>,
    pub jid: Option<String>,
    pub credentials: Credentials,
    pub auto_connect: Option<bool>,
    /// The node making the change, named in the `session.status` event.
    pub node_id: Option<String>,
    /// With status `pairing_code`: the code and when it expires, for the event.
    pub pairing_code: Option<(String, Timestamp)>,
    /// The lease of the node making the change: refused (`Fenced`) unless still current.
    pub lease: Option<i64>,
}

/// What to do with a session's stored device credentials.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    #[default]
    Keep,
    Set(serde_json::Value),
    /// Forget them and the linked phone (logout).
    Clear,
}

/// An outbound message to accept.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    pub session_id: SessionId,
    pub to: Jid,
    pub content: MessageContent,
    pub idempotency_key: Option<String>,
    /// Send at this time (the message is `scheduled` until then) rather than at once.
    pub scheduled_at: Option<Timestamp>,
    /// The message it replies to.
    pub context: Option<ReplyContext>,
    /// JIDs it mentions.
    pub mentions: Vec<String>,
}

/// The answer to accepting one outbound message.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message: Message,
    /// False when the idempotency key matched an earlier message, which is returned instead.
    pub created: bool,
    pub event: Option<Event>,
}

/// An inbound message to store.
#[derive(Debug, Clone)]
pub struct NewInbound {
    pub session_id: SessionId,
    pub wa_id: String,
    pub chat: String,
    pub from: String,
    pub to: String,
    pub content: MessageContent,
    pub at: Timestamp,
    /// WhatsApp's id of the message it replies to.
    pub reply_to: Option<String>,
    pub mentions: Vec<String>,
    /// The author's LID and profile name, where known.
    pub sender: Option<Sender>,
}

/// Which message a status update is about.
#[derive(Debug, Clone)]
pub enum MessageRef {
    Id(MessageId),
    /// An outbound message of this session, by WhatsApp's id (receipts).
    WaId(SessionId, String),
}

/// A status to apply to an outbound message.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub message: MessageRef,
    pub status: MessageStatus,
    pub reason: Option<String>,
    /// WhatsApp's id, learnt when the message is sent.
    pub wa_id: Option<String>,
    /// With `status = queued`: when to try again.
    pub retry_at: Option<Timestamp>,
}

/// Filters for listing a session's messages, newest first.
#[derive(Debug, Clone)]
pub struct MessageQuery {
    pub session_id: SessionId,
    pub chat: Option<String>,
    pub direction: Option<Direction>,
    pub before: Option<MessageId>,
    pub limit: u32,
}

/// Filters for reading the event log, oldest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub after: Option<EventId>,
    pub session_id: Option<SessionId>,
    pub types: Vec<EventType>,
    pub limit: u32,
}

/// A session asking for its due messages.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub session_id: SessionId,
    /// The claiming node's lease token: nothing is claimed once another node holds the session.
    pub lease: i64,
    pub limit: u32,
    /// Pacing caps reached: queued messages they cover wait until then (applied before claiming).
    pub defer: Vec<Deferral>,
}

/// Queued messages of a session that must not be sent before `until`: all of them, or those
/// to one recipient.
#[derive(Debug, Clone)]
pub struct Deferral {
    pub recipient: Option<String>,
    pub until: Timestamp,
}

/// A campaign to create: one message per recipient, each already rendered.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub session_id: SessionId,
    pub name: String,
    pub template: Option<String>,
    /// The body as given, placeholders and all.
    pub content: MessageContent,
    pub scheduled_at: Option<Timestamp>,
    pub recipients: Vec<(Jid, MessageContent)>,
    /// How many recipients were left out.
    pub rejected: u64,
}

/// Filters for listing a campaign's messages, in recipient order.
#[derive(Debug, Clone)]
pub struct RecipientQuery {
    pub campaign_id: CampaignId,
    pub status: Option<MessageStatus>,
    pub after: Option<MessageId>,
    pub limit: u32,
}

/// An outbound message claimed for sending.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub message: Message,
    /// How many times a send was tried before this one.
    pub attempts: u32,
}

/// A webhook to create.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub session_id: Option<SessionId>,
    pub description: Option<String>,
    pub secret: String,
}

/// A change to a webhook; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    /// Enabling a webhook also forgets why it was disabled and its run of failures.
    pub enabled: Option<bool>,
}

/// Filters for listing a webhook's deliveries, newest first.
#[derive(Debug, Clone)]
pub struct DeliveryQuery {
    pub webhook_id: WebhookId,
    pub status: Option<DeliveryStatus>,
    pub before: Option<DeliveryId>,
    pub limit: u32,
}

/// How many deliveries the caller can take now: per webhook, `max_in_flight` minus those it
/// already holds.
#[derive(Debug, Clone, Default)]
pub struct DeliverySlots {
    pub max_in_flight: u32,
    pub in_flight: std::collections::HashMap<WebhookId, u32>,
}

/// A delivery claimed for one attempt.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub event: Event,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    RetryAt(Timestamp),
    /// That was the last scheduled attempt.
    Failed,
}

/// The result of one attempt, to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery: DeliveryId,
    pub webhook_id: WebhookId,
    pub attempt: Attempt,
    pub outcome: AttemptOutcome,
}

/// One end of a range of events: an event id or a time, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventBound {
    Id(EventId),
    Time(Timestamp),
}

/// A node as it describes itself at each heartbeat.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: String,
    /// Where its API answers.
    pub address: String,
    pub version: String,
    /// `active`, or `draining` (taking no sessions, handing its own over).
    pub state: String,
    pub max_sessions: u32,
    pub started_at: Timestamp,
}

/// A node as the cluster sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Node {
    pub id: String,
    pub address: String,
    pub version: String,
    /// `active`, `draining`, or `dead` (no heartbeat within the lease TTL).
    pub state: String,
    pub max_sessions: u32,
    pub sessions: u64,
    pub started_at: Timestamp,
    pub last_heartbeat: Timestamp,
}

/// A session this node holds, with its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub session_id: SessionId,
    pub token: i64,
    /// What another node asked the owner to do (`disconnect`, `logout`), if anything.
    pub command: Option<String>,
}

/// What a heartbeat tells a node.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The sessions it holds.
    pub leases: Vec<Lease>,
    /// Its state as the cluster has it: `draining` once anyone asked it to drain.
    pub state: String,
}

/// One grant of a session's lease.
#[derive(Debug, Clone)]
pub struct LeaseGrant {
    pub node_id: String,
    pub token: i64,
    pub acquired_at: Timestamp,
}

/// Everything wagate keeps durably. Every method that changes a session or a message appends
/// its events in the same transaction and returns them, so callers can publish what is committed.
#[async_trait]
pub trait Store: DeviceKeys + Send + Sync + 'static {
    /// Checks that the database answers on a new connection and has every migration applied.
    async fn ready(&self) -> Result<(), NotReady>;
    /// Closes the database connections, waiting for those in use.
    async fn close(&self);

    /// Records a node's heartbeat and extends its leases to `until`; returns those it holds.
    async fn heartbeat(&self, node: &NodeInfo, now: Timestamp, until: Timestamp) -> StoreResult<Heartbeat>;
    /// Takes up to `limit` sessions that should run (connected by a user, not since
    /// disconnected) and that no node holds: never leased, released, or expired. With
    /// `restarted`, also those this node id held before it restarted. With `only`, that one
    /// session (being connected now), whether or not it should run yet. Each gets a new token.
    async fn acquire_sessions(
        &self,
        node_id: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
        restarted: bool,
        only: Option<&SessionId>,
    ) -> StoreResult<Vec<(Session, Lease)>>;
    /// Gives leases up so other nodes can take the sessions at once.
    async fn release_sessions(&self, node_id: &str, leases: &[Lease]) -> StoreResult<()>;
    /// Nodes, with `dead` for those silent since `dead_before`.
    async fn list_nodes(&self, dead_before: Timestamp) -> StoreResult<Vec<Node>>;
    /// Sessions that should run, and how many live (heartbeat since `live_since`) active nodes share them.
    async fn cluster_load(&self, live_since: Timestamp) -> StoreResult<(u64, u64)>;
    /// Sets a node's state (`draining`); false when there is no such node.
    async fn set_node_state(&self, node_id: &str, state: &str) -> StoreResult<bool>;
    /// Asks the node holding a session to carry out `command`; returns that node, if any.
    /// (Only a live lease counts: a dead node's sessions are not waited for.)
    async fn request_command(
        &self,
        session_id: &SessionId,
        command: &str,
        now: Timestamp,
    ) -> StoreResult<Option<String>>;
    /// Tells every node sharing the database something (PostgreSQL NOTIFY); nothing on SQLite.
    async fn signal(&self, message: &str) -> StoreResult<()>;
    /// What other nodes signal, as it comes; `None` where there can be no other node.
    async fn listen(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>;
    /// Every grant of a session's lease, oldest first.
    async fn lease_history(&self, session_id: &SessionId) -> StoreResult<Vec<LeaseGrant>>;

    async fn create_session(&self, new: NewSession, now: Timestamp) -> StoreResult<(Session, Event)>;
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>>;
    async fn list_sessions(&self) -> StoreResult<Vec<Session>>;
    /// The session of `connector` linked to `phone`, if any.
    async fn find_linked_session(
        &self,
        connector: ConnectorKind,
        phone: &str,
    ) -> StoreResult<Option<Session>>;
    /// Deletes the session with its messages and queue; its events stay in the log.
    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool>;
    /// Applies a change; appends a `session.status` event when the status is set.
    async fn update_session(
        &self,
        id: &SessionId,
        change: SessionChange,
        now: Timestamp,
    ) -> StoreResult<(Session, Option<Event>)>;

    /// Appends an event that changes no row (for example `session.qr`).
    async fn append_event(
        &self,
        session_id: &SessionId,
        data: EventData,
        now: Timestamp,
    ) -> StoreResult<Event>;
    async fn list_events(&self, query: EventQuery) -> StoreResult<Vec<Event>>;

    /// Accepts outbound messages in one transaction: each becomes `queued` with an outbox row
    /// and a `message.status` event. One result per input, in order.
    async fn accept_outbound(
        &self,
        batch: Vec<NewOutbound>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Accepted>>>;
    /// Claims due messages of several sessions in one transaction: for each request up to
    /// `limit` of that session's due messages, oldest first, marked `sending` and leased until
    /// `lease_until`. One answer per request, in order, with the events it appended.
    async fn claim_outbound(
        &self,
        requests: Vec<ClaimRequest>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<(Vec<Claimed>, Vec<Event>)>>;
    /// When the next queued message of a session becomes due, if any is waiting.
    async fn next_outbound_due(&self, session_id: &SessionId) -> StoreResult<Option<Timestamp>>;
    /// Applies status updates in one transaction. Unknown messages and stale receipts are
    /// skipped; an illegal transition fails only its own update.
    /// Each answer holds the update's `message.status` event (none when skipped) and the
    /// `campaign.status` event of a campaign it completed.
    async fn apply_statuses(
        &self,
        updates: Vec<StatusUpdate>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Vec<Event>>>>;
    /// The recipient and time of each message of a session sent since `since`, oldest first.
    async fn sent_since(
        &self,
        session_id: &SessionId,
        since: Timestamp,
    ) -> StoreResult<Vec<(String, Timestamp)>>;
    /// Stores inbound messages, skipping ones already stored (same session and WhatsApp id).
    /// Returns the `message.received` events of the new ones.
    async fn store_inbound(&self, batch: Vec<NewInbound>, now: Timestamp) -> StoreResult<Vec<Event>>;

    /// Cancels a message that is still `scheduled`: it goes `canceled` and leaves the queue.
    /// `Conflict` when it is past that.
    async fn cancel_scheduled(&self, id: &MessageId, now: Timestamp) -> StoreResult<(Message, Event)>;
    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>>;
    async fn list_messages(&self, query: MessageQuery) -> StoreResult<Vec<Message>>;

    async fn stats(&self) -> StoreResult<Stats>;

    /// Records a media file whose bytes are stored.
    async fn create_media(&self, media: &Media) -> StoreResult<()>;
    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>>;
    /// Forgets up to `limit` media files stored before `before`; answers their ids, so that
    /// their bytes can be deleted.
    async fn expire_media(&self, before: Timestamp, limit: u32) -> StoreResult<Vec<MediaId>>;

    /// Creates a campaign with its messages (queued, or scheduled) in one transaction, with one
    /// `campaign.status` event rather than one event per message. `NotFound` without the session.
    async fn create_campaign(&self, new: NewCampaign, now: Timestamp) -> StoreResult<(Campaign, Event)>;
    async fn get_campaign(&self, session: &SessionId, id: &CampaignId) -> StoreResult<Option<Campaign>>;
    /// A session's campaigns, newest first.
    async fn list_campaigns(&self, session: &SessionId) -> StoreResult<Vec<Campaign>>;
    /// Pauses, resumes or cancels a campaign. `Ok(Err(state))` when the action does not apply
    /// to the campaign's current state; `NotFound` without the campaign.
    async fn act_on_campaign(
        &self,
        session: &SessionId,
        id: &CampaignId,
        action: CampaignAction,
        now: Timestamp,
    ) -> StoreResult<Result<(Campaign, Event), CampaignState>>;
    async fn list_campaign_recipients(&self, query: RecipientQuery) -> StoreResult<Vec<Message>>;

    /// `Conflict` when a template of that name exists.
    async fn create_template(
        &self,
        name: String,
        language: Option<String>,
        content: MessageContent,
        now: Timestamp,
    ) -> StoreResult<Template>;
    async fn get_template(&self, name: &str) -> StoreResult<Option<Template>>;
    async fn list_templates(&self) -> StoreResult<Vec<Template>>;
    async fn update_template(
        &self,
        name: &str,
        change: TemplateChange,
        now: Timestamp,
    ) -> StoreResult<Option<Template>>;
    async fn delete_template(&self, name: &str) -> StoreResult<bool>;

    /// `NotFound` when the session does not exist.
    async fn create_hook(&self, new: NewHook, now: Timestamp) -> StoreResult<Hook>;
    async fn list_hooks(&self, session: &SessionId) -> StoreResult<Vec<Hook>>;
    async fn delete_hook(&self, session: &SessionId, id: &HookId) -> StoreResult<bool>;
    /// The hook with this token hash, marked used at `now`.
    async fn use_hook(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Hook>>;

    /// Records what was learned of contacts: a field left `None` keeps what is known.
    async fn save_contacts(&self, session: &SessionId, contacts: Vec<Contact>) -> StoreResult<()>;
    /// A session's contacts by JID, after `after`.
    async fn list_contacts(
        &self,
        session: &SessionId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Contact>>;
    /// Records what was learned of chats: a name left `None` keeps what is known, and the last
    /// message time only moves forward.
    async fn save_chats(&self, session: &SessionId, chats: Vec<Chat>) -> StoreResult<()>;
    /// A session's chats, most recent activity first.
    async fn list_chats(&self, session: &SessionId, offset: u32, limit: u32) -> StoreResult<Vec<Chat>>;

    /// The id of the newest event in the log.
    async fn last_event_id(&self) -> StoreResult<Option<EventId>>;

    async fn create_webhook(&self, new: NewWebhook, now: Timestamp) -> StoreResult<Webhook>;
    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>>;
    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>>;
    async fn update_webhook(
        &self,
        id: &WebhookId,
        change: WebhookChange,
        now: Timestamp,
    ) -> StoreResult<Option<Webhook>>;
    /// Replaces the signing secret; the old one keeps signing until `previous_until`.
    async fn rotate_webhook_secret(
        &self,
        id: &WebhookId,
        secret: String,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<Webhook>>;
    /// Deletes a webhook with its deliveries.
    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool>;

    /// Claims due deliveries of enabled webhooks, oldest due first, as many as each webhook
    /// has free slots; each is leased (not due again) until `lease_until`. Answers every
    /// enabled webhook, with what was claimed for it (possibly nothing).
    async fn claim_deliveries(
        &self,
        slots: DeliverySlots,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<(Webhook, Vec<ClaimedDelivery>)>>;
    /// Makes claimed deliveries that were not attempted due again at `now` (their lease given back).
    async fn release_deliveries(&self, ids: Vec<DeliveryId>, now: Timestamp) -> StoreResult<()>;
    /// Records attempts in one transaction. A webhook whose attempts have all failed since
    /// `disable_after` ago is disabled, and its `webhook.disabled` event is returned.
    async fn record_attempts(
        &self,
        records: Vec<AttemptRecord>,
        now: Timestamp,
        disable_after: chrono::Duration,
    ) -> StoreResult<Vec<Event>>;
    async fn list_deliveries(&self, query: DeliveryQuery) -> StoreResult<Vec<Delivery>>;
    async fn get_delivery(&self, webhook: &WebhookId, id: DeliveryId) -> StoreResult<Option<Delivery>>;
    /// Makes a delivery due now, whatever its status.
    async fn retry_delivery(
        &self,
        webhook: &WebhookId,
        id: DeliveryId,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>>;
    /// Queues new deliveries to a webhook of the events it wants from `from` to `until`
    /// (inclusive); answers how many, with the first and last event id.
    async fn replay_events(
        &self,
        webhook: &WebhookId,
        from: EventBound,
        until: Option<EventBound>,
        now: Timestamp,
    ) -> StoreResult<Replayed>;
}

/// A change to a template; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TemplateChange {
    pub content: Option<MessageContent>,
    /// `Some(None)` clears it.
    pub language: Option<Option<String>>,
}

/// A trigger hook to create; only the hash of its token is kept.
#[derive(Debug, Clone)]
pub struct NewHook {
    pub session_id: SessionId,
    pub token_hash: String,
    pub to: Vec<String>,
    pub template: Option<String>,
    pub description: Option<String>,
}

/// Counts for monitoring, read at once.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// (connector, status, sessions)
    pub sessions: Vec<(String, String, u64)>,
    /// Outbound messages waiting to be sent, and when the oldest of them was accepted.
    pub outbox: u64,
    pub outbox_oldest: Option<Timestamp>,
    /// Webhook deliveries pending, and when the oldest of them was queued.
    pub deliveries_pending: u64,
    pub deliveries_oldest: Option<Timestamp>,
}

/// What a replay queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    pub count: u64,
    pub first: Option<EventId>,
    pub last: Option<EventId>,
}

/// One value a connector keeps for a session's device, in a namespace (`kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    pub kind: String,
    pub key: String,
    pub value: Vec<u8>,
    /// What the kind makes of it: a flag, or a time (seconds) after which the row may go.
    pub number: i64,
}

impl DeviceKey {
    pub fn new(kind: &str, key: impl Into<String>, value: impl Into<Vec<u8>>, number: i64) -> Self {
        Self { kind: kind.to_owned(), key: key.into(), value: value.into(), number }
    }
}

/// What connectors keep for each session's device (keys, protocol state), kept in the same
/// database as everything else so that a session can move between nodes. Writes need no
/// lease: only the node running a session writes its keys.
#[async_trait]
pub trait DeviceKeys: Send + Sync + 'static {
    /// The values of those `keys` of `kind` that exist, in no particular order.
    async fn get_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
    ) -> StoreResult<Vec<DeviceKey>>;
    /// Every value of `kind` whose key starts with `prefix` (all of them for `""`), by key.
    async fn scan_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        prefix: &str,
    ) -> StoreResult<Vec<DeviceKey>>;
    /// Whether any value of one of `kinds` has a key starting with one of `prefixes`.
    async fn any_device_key(
        &self,
        session: &SessionId,
        kinds: &[&str],
        prefixes: &[&str],
    ) -> StoreResult<bool>;
    /// Inserts or replaces values, all in one transaction (of one key given twice, the last).
    async fn put_device_keys(&self, session: &SessionId, keys: Vec<DeviceKey>) -> StoreResult<()>;
    /// Deletes those keys of `kind`; answers how many there were.
    async fn delete_device_keys(&self, session: &SessionId, kind: &str, keys: &[&str]) -> StoreResult<u64>;
    /// Deletes the values of `kind` whose key starts with `prefix`; answers how many.
    async fn delete_device_keys_by_prefix(
        &self,
        session: &SessionId,
        kind: &str,
        prefix: &str,
    ) -> StoreResult<u64>;
    /// Deletes the values of `kind` whose number is positive and below `before`; answers how many.
    async fn expire_device_keys(&self, session: &SessionId, kind: &str, before: i64) -> StoreResult<u64>;
    /// Sets the number of those keys of `kind` that exist; inserts nothing.
    async fn set_device_key_numbers(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
        number: i64,
    ) -> StoreResult<()>;
    /// Deletes one value and answers it (so that two takers cannot both have it).
    async fn take_device_key(
        &self,
        session: &SessionId,
        kind: &str,
        key: &str,
    ) -> StoreResult<Option<DeviceKey>>;
    /// Deletes everything kept for a session's device (when it logs out).
    async fn clear_device_keys(&self, session: &SessionId) -> StoreResult<()>;
}
