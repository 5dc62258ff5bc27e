//! Message content as callers send it and the status machine every message follows.

use serde::{Deserialize, Serialize};

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent by wagate on behalf of the session.
    Out,
    /// Received by the session.
    In,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "out" => Some(Direction::Out),
            "in" => Some(Direction::In),
            _ => None,
        }
    }
}

/// The body of a text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TextContent {
    pub body: String,
}

/// What a message says; the JSON shape follows Meta's Cloud API (`{"type":"text","text":{…}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    Text { text: TextContent },
}

/// WhatsApp refuses text bodies longer than this many characters.
pub const MAX_TEXT_CHARS: usize = 4096;

impl MessageContent {
    /// The `type` field of this content.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageContent::Text { .. } => "text",
        }
    }

    /// Checks the rules serde cannot express; the error names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            MessageContent::Text { text } => {
                if text.body.trim().is_empty() {
                    return Err(("text.body", "must not be empty".into()));
                }
                if text.body.chars().count() > MAX_TEXT_CHARS {
                    return Err(("text.body", format!("must be at most {MAX_TEXT_CHARS} characters")));
                }
                Ok(())
            }
        }
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Accepted, to be sent at its `scheduled_at`.
    Scheduled,
    /// Accepted and waiting for its session to send it.
    Queued,
    /// Handed to the connector; no answer yet.
    Sending,
    /// WhatsApp's server took it.
    Sent,
    /// It reached the recipient's device.
    Delivered,
    /// The recipient read it.
    Read,
    /// It will not be sent; `status_reason` says why.
    Failed,
    /// An inbound message, stored.
    Received,
    /// A scheduled message canceled before it was due.
    Canceled,
}

/// A status change the state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a message cannot go from {from:?} to {to:?}")]
pub struct IllegalTransition {
    pub from: MessageStatus,
    pub to: MessageStatus,
}

/// What applying a status to a message means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// The message moves to the new status.
    Apply,
    /// The message is already at or past it (a late or repeated receipt): nothing changes.
    Stale,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Received => "received",
            MessageStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduled" => MessageStatus::Scheduled,
            "queued" => MessageStatus::Queued,
            "sending" => MessageStatus::Sending,
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "failed" => MessageStatus::Failed,
            "received" => MessageStatus::Received,
            "canceled" => MessageStatus::Canceled,
            _ => return None,
        })
    }

    /// True once the send has an outcome: WhatsApp took it, or it failed.
    pub fn is_send_result(self) -> bool {
        matches!(
            self,
            MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read | MessageStatus::Failed
        )
    }

    /// Position along queued → sending → sent → delivered → read.
    fn progress(self) -> Option<u8> {
        match self {
            MessageStatus::Scheduled | MessageStatus::Queued => Some(0),
            MessageStatus::Sending => Some(1),
            MessageStatus::Sent => Some(2),
            MessageStatus::Delivered => Some(3),
            MessageStatus::Read => Some(4),
            MessageStatus::Failed | MessageStatus::Received | MessageStatus::Canceled => None,
        }
    }

    /// Decides whether a message at `self` may move to `to`.
    ///
    /// Receipts may skip steps (a read receipt can arrive without a delivery receipt) and may
    /// arrive late or twice; those are `Stale`, not errors. A send that failed in a retryable
    /// way goes back from `sending` to `queued`.
    pub fn transition(self, to: MessageStatus) -> Result<StatusChange, IllegalTransition> {
        use MessageStatus::*;
        let illegal = Err(IllegalTransition { from: self, to });
        match (self, to) {
            (Queued | Scheduled, Sending) | (Sending, Queued) => Ok(StatusChange::Apply),
            (Scheduled, Canceled) => Ok(StatusChange::Apply),
            (Scheduled | Queued | Sending | Sent, Failed) => Ok(StatusChange::Apply),
            (Sending | Sent | Delivered, Sent | Delivered | Read) => match (self.progress(), to.progress()) {
                (Some(from), Some(next)) if next > from => Ok(StatusChange::Apply),
                _ => Ok(StatusChange::Stale),
            },
            (Read, Sent | Delivered | Read) => Ok(StatusChange::Stale),
            (Failed, Failed) | (Canceled, Canceled) => Ok(StatusChange::Stale),
            _ => illegal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;
    use super::*;

    #[test]
    fn the_happy_path_applies() {
        for (from, to) in [(Queued, Sending), (Sending, Sent), (Sent, Delivered), (Delivered, Read)] {
            assert_eq!(from.transition(to), Ok(StatusChange::Apply), "{from:?}->{to:?}");
        }
    }

    #[test]
    fn receipts_may_skip_steps_and_arrive_late() {
        assert_eq!(Sent.transition(Read), Ok(StatusChange::Apply));
        assert_eq!(Sending.transition(Delivered), Ok(StatusChange::Apply));
        assert_eq!(Read.transition(Delivered), Ok(StatusChange::Stale));
        assert_eq!(Delivered.transition(Delivered), Ok(StatusChange::Stale));
        assert_eq!(Delivered.transition(Sent), Ok(StatusChange::Stale));
    }

    #[test]
    fn a_scheduled_message_is_sent_or_canceled() {
        assert_eq!(Scheduled.transition(Sending), Ok(StatusChange::Apply));
        assert_eq!(Scheduled.transition(Canceled), Ok(StatusChange::Apply));
        assert_eq!(Canceled.transition(Canceled), Ok(StatusChange::Stale));
        for to in [Sent, Queued, Read] {
            assert!(Scheduled.transition(to).is_err(), "{to:?}");
        }
        for from in [Queued, Sending, Sent, Failed] {
            assert!(from.transition(Canceled).is_err(), "{from:?}");
        }
    }

    #[test]
    fn retries_and_failures() {
        assert_eq!(Sending.transition(Queued), Ok(StatusChange::Apply));
        assert_eq!(Queued.transition(Failed), Ok(StatusChange::Apply));
        assert_eq!(Sending.transition(Failed), Ok(StatusChange::Apply));
        assert_eq!(Sent.transition(Failed), Ok(StatusChange::Apply));
    }

    #[test]
    fn illegal_transitions_are_rejected() {
        for (from, to) in [
            (Queued, Sent),
            (Queued, Read),
            (Sent, Queued),
            (Read, Queued),
            (Delivered, Failed),
            (Failed, Sent),
            (Failed, Queued),
            (Received, Sent),
            (Queued, Received),
        ] {
            assert_eq!(from.transition(to), Err(IllegalTransition { from, to }), "{from:?}->{to:?}");
        }
    }

    #[test]
    fn content_uses_the_cloud_api_shape() {
        let content: MessageContent =
            serde_json::from_str(r#"{"type":"text","text":{"body":"Hi"}}"#).unwrap();
        assert_eq!(content.kind(), "text");
        assert!(content.validate().is_ok());
        let empty: MessageContent = serde_json::from_str(r#"{"type":"text","text":{"body":" "}}"#).unwrap();
        assert_eq!(empty.validate().unwrap_err().0, "text.body");
        assert!(serde_json::from_str::<MessageContent>(r#"{"type":"text"}"#).is_err());
    }
}

/// One step of a message's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusEntry {
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A stored message, inbound or outbound, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub id: crate::MessageId,
    pub session_id: crate::SessionId,
    pub direction: Direction,
    /// The conversation: the other party's JID, or the group's.
    pub chat: String,
    /// The author's JID; unknown for an outbound message accepted before its session linked.
    pub from: Option<String>,
    pub to: String,
    #[serde(flatten)]
    pub content: MessageContent,
    pub status: MessageStatus,
    pub status_reason: Option<String>,
    /// WhatsApp's own id for the message, once it has one.
    pub wa_id: Option<String>,
    /// When a scheduled message is (or was) due; absent for messages sent at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_history: Vec<StatusEntry>,
}
