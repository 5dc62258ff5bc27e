//! The event log: every change wagate reports, in commit order.

use async_trait::async_trait;
use wagate_core::{Event, EventData, EventId, EventType, OrgId, SessionId, Timestamp};

use crate::StoreResult;

/// Filters for reading the event log, oldest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub after: Option<EventId>,
    /// Only this organization's events.
    pub org_id: Option<OrgId>,
    pub session_id: Option<SessionId>,
    /// Only events of these sessions (a key limited to them).
    pub sessions: Option<Vec<SessionId>>,
    pub types: Vec<EventType>,
    pub limit: u32,
}

/// An event a write appended, committed with it. The log gives it its id when it numbers it:
/// in the write's own transaction on SQLite (one writer at a time), just after commit on
/// PostgreSQL ([`Events::sequence_events`]). Readers see an event only once it is numbered, so
/// one committed late is numbered late and never skipped.
#[derive(Debug, Clone)]
pub struct Appended {
    pub session_id: Option<SessionId>,
    pub data: EventData,
}

impl Appended {
    pub fn kind(&self) -> EventType {
        self.data.kind()
    }
}

/// The event log. Each event also queues its deliveries to the webhooks that want it, as it
/// is numbered.
#[async_trait]
pub trait Events: Send + Sync {
    /// Appends an event that changes no row (for example `session.qr`).
    async fn append_event(
        &self,
        session_id: &SessionId,
        data: EventData,
        now: Timestamp,
    ) -> StoreResult<Appended>;
    /// Numbered events after the query's cursor, oldest first.
    async fn list_events(&self, query: EventQuery) -> StoreResult<Vec<Event>>;
    /// The id of the newest numbered event in the log.
    async fn last_event_id(&self) -> StoreResult<Option<EventId>>;
    /// Numbers every committed event that has no number yet, in the order they were appended,
    /// and queues their webhook deliveries; answers how many. Any node may call it at any
    /// time: calls take turns. Nothing to do on SQLite, which numbers events as they are
    /// appended.
    async fn sequence_events(&self, now: Timestamp) -> StoreResult<u64>;
}
