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

/// The event log. Each event also queues its deliveries to the webhooks that want it.
#[async_trait]
pub trait Events: Send + Sync {
    /// Appends an event that changes no row (for example `session.qr`).
    async fn append_event(
        &self,
        session_id: &SessionId,
        data: EventData,
        now: Timestamp,
    ) -> StoreResult<Event>;
    async fn list_events(&self, query: EventQuery) -> StoreResult<Vec<Event>>;
    /// The id of the newest event in the log.
    async fn last_event_id(&self) -> StoreResult<Option<EventId>>;
}
