//! The event envelope every consumer (event API, webhooks, streams) sees.

use serde::{Deserialize, Serialize};

use crate::EventId;

/// The kinds of events wagate appends to its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "session.status")]
    SessionStatus,
    #[serde(rename = "session.qr")]
    SessionQr,
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.status")]
    MessageStatus,
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
    #[serde(rename = "campaign.status")]
    CampaignStatus,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::SessionStatus,
        EventType::SessionQr,
        EventType::MessageReceived,
        EventType::MessageStatus,
        EventType::WebhookDisabled,
        EventType::CampaignStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionStatus => "session.status",
            EventType::SessionQr => "session.qr",
            EventType::MessageReceived => "message.received",
            EventType::MessageStatus => "message.status",
            EventType::WebhookDisabled => "webhook.disabled",
            EventType::CampaignStatus => "campaign.status",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether a filter (an exact type or `prefix.*`) selects this type.
    pub fn matches(self, filter: &str) -> bool {
        match filter.strip_suffix(".*") {
            Some(prefix) => self.as_str().strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
            None => filter == "*" || filter == self.as_str(),
        }
    }
}

/// One entry of the event log: `{"id","type","session_id","created_at","data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The session the event is about; none for events about wagate itself (webhooks).
    pub session_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub data: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_exact_types_and_prefixes() {
        assert!(EventType::MessageStatus.matches("message.status"));
        assert!(EventType::MessageStatus.matches("message.*"));
        assert!(EventType::MessageStatus.matches("*"));
        assert!(!EventType::MessageStatus.matches("session.*"));
        assert!(!EventType::MessageStatus.matches("mess.*"));
        assert!(!EventType::SessionQr.matches("session.status"));
    }
}
