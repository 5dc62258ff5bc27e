//! Webhooks, their deliveries (claimed with leases, attempted, retried) and replays of the
//! event log to them.

use async_trait::async_trait;
use wagate_core::{
    Attempt, Delivery, DeliveryId, DeliveryStatus, Event, EventId, OrgId, SessionId, Timestamp, Webhook,
    WebhookId,
};

use crate::{Appended, StoreResult};

/// A webhook to create.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub org_id: OrgId,
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

/// What a replay queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    pub count: u64,
    pub first: Option<EventId>,
    pub last: Option<EventId>,
}

/// Webhooks and their deliveries.
#[async_trait]
pub trait Webhooks: Send + Sync {
    async fn create_webhook(&self, new: NewWebhook, now: Timestamp) -> StoreResult<Webhook>;
    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>>;
    /// Every webhook, or only those of one organization.
    async fn list_webhooks(&self, org: Option<&OrgId>) -> StoreResult<Vec<Webhook>>;
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
    ) -> StoreResult<Vec<Appended>>;
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
