//! Webhooks: where events are POSTed, and the record of each delivery.

use serde::{Deserialize, Serialize};

use crate::{DeliveryId, EventId, EventType, SessionId, Timestamp, WebhookId};

/// A receiver of events.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: WebhookId,
    /// The organization it belongs to; it only ever receives that organization's events.
    pub org_id: crate::OrgId,
    pub url: String,
    /// Filters: exact event types, `prefix.*` or `*`.
    pub events: Vec<String>,
    /// Only this session's events when set.
    pub session_id: Option<SessionId>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why the webhook was disabled, when wagate disabled it.
    pub disabled_reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The signing secret (`whsec_…`); shown only when created or rotated.
    #[serde(skip)]
    pub secret: String,
    /// The secret before the last rotation and until when it still signs.
    #[serde(skip)]
    pub previous_secret: Option<(String, Timestamp)>,
}

impl Webhook {
    /// The secrets that sign a delivery made at `now`: the current one, and the previous
    /// one while its overlap lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some((previous, until)) = &self.previous_secret {
            if *until > now {
                secrets.push(previous);
            }
        }
        secrets
    }
}

/// Where a delivery stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every scheduled attempt failed; kept for inspection and manual retry.
    Failed,
}

impl DeliveryStatus {
    /// Its name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempt_count: u32,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The receiver's HTTP status; absent when no answer came (refused, timeout).
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// The first 4 KiB of the receiver's answer.
    pub response_body: Option<String>,
    /// Why no answer came, or why it was not a success.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(events: &[&str], session: Option<&str>) -> Webhook {
        let now = chrono::Utc::now();
        Webhook {
            id: WebhookId::generate(),
            org_id: crate::OrgId::default_org(),
            url: "https://example.com/hook".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            session_id: session.map(|s| SessionId::parse(s).unwrap()),
            description: None,
            enabled: true,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
            secret: "whsec_new".into(),
            previous_secret: Some(("whsec_old".into(), now + chrono::Duration::hours(1))),
        }
    }

    #[test]
    fn the_previous_secret_signs_until_its_overlap_ends() {
        let hook = webhook(&["*"], None);
        let now = hook.created_at;
        assert_eq!(hook.signing_secrets(now), ["whsec_new", "whsec_old"]);
        assert_eq!(hook.signing_secrets(now + chrono::Duration::hours(2)), ["whsec_new"]);
    }
}
