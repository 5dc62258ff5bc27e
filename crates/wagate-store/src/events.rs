//! The event log: every change wagate reports, in commit order.

use std::ops::RangeInclusive;

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

/// The ids one call of [`Events::sequence_events`] gave, one range per turn it took. Each
/// committed event is numbered by exactly one turn, on whichever node took it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Numbered {
    pub turns: Vec<RangeInclusive<EventId>>,
}

impl Numbered {
    /// How many events were numbered.
    pub fn count(&self) -> u64 {
        self.turns
            .iter()
            .map(|turn| u64::try_from(turn.end().seq() - turn.start().seq() + 1).unwrap_or(0))
            .sum()
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
    /// and queues their webhook deliveries; answers the ids it gave. Any node may call it at
    /// any time: calls take turns. Nothing to do when events are numbered as they are appended
    /// ([`Events::numbers_at_append`]).
    async fn sequence_events(&self, now: Timestamp) -> StoreResult<Numbered>;
    /// Whether each event is numbered in its writer's transaction (SQLite: one writer, one
    /// node), rather than by [`Events::sequence_events`] after commit (PostgreSQL).
    fn numbers_at_append(&self) -> bool;
}
