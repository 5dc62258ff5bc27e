//! Retention: deleting what is older than the age it is kept for, a bounded batch at a time,
//! so that a sweep never holds the writer for long. Each call deletes from one window of the
//! oldest rows and says where the next window starts; two nodes sweeping at once delete each
//! row once (a delete re-checks its conditions as it runs).

use async_trait::async_trait;
use wagate_core::{DeliveryId, EventId, MessageId, Timestamp};

use crate::StoreResult;

/// What one batch of a sweep did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept<K> {
    /// Rows deleted (not counting those deleted with them: a delivery's attempts).
    pub deleted: u64,
    /// Where the next batch starts; `None` when the sweep reached rows younger than its
    /// cutoff, or the end.
    pub resume_after: Option<K>,
}

/// Deleting old events, webhook deliveries and messages.
#[async_trait]
pub trait Retention: Send + Sync {
    /// Deletes, among the `limit` oldest events after `after`, those appended before `before`,
    /// with their finished webhook deliveries. Keeps an event a delivery still has to carry
    /// (pending) and the newest event. Raises [`Retention::events_expired_through`].
    async fn expire_events(
        &self,
        before: Timestamp,
        after: Option<EventId>,
        limit: u32,
    ) -> StoreResult<Swept<EventId>>;
    /// Deletes, among the `limit` oldest webhook deliveries after `after`, the finished ones
    /// (delivered or failed) queued before `before`, with their attempts.
    async fn expire_deliveries(
        &self,
        before: Timestamp,
        after: Option<DeliveryId>,
        limit: u32,
    ) -> StoreResult<Swept<DeliveryId>>;
    /// Deletes, among the `limit` oldest messages after `after`, those accepted or received
    /// before `before` that have nothing left to do: not scheduled, queued or sending.
    async fn expire_messages(
        &self,
        before: Timestamp,
        after: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Swept<MessageId>>;
    /// The newest event retention deleted: a reader resuming after an older id has missed
    /// events.
    async fn events_expired_through(&self) -> StoreResult<Option<EventId>>;
}
