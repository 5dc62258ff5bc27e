//! wagate-core: the domain types and rules of wagate (ids, phone numbers and JIDs, message
//! content, the message and session state machines, the event envelope, webhooks, what the nodes of a cluster tell each other). No I/O lives here.

pub mod audit;
pub mod campaign;
pub mod cluster;
pub mod contact;
pub mod device_keys;
pub mod event;
pub mod ids;
pub mod key;
pub mod media;
pub mod message;
pub mod org;
pub mod phone;
pub mod session;
pub mod template;
pub mod webhook;

pub use audit::{ActorKind, AuditEntry};
pub use campaign::{Campaign, CampaignAction, CampaignCounts, CampaignState, CampaignStatus, Rejected};
pub use cluster::{NodeState, RemoteCommand, Signal, SignalError};
pub use contact::{Chat, Contact};
pub use device_keys::{DeviceKey, DeviceKeys, DeviceKeysError, DeviceKeysResult};
pub use event::{
    CampaignStatusData, Event, EventData, EventDataError, EventFilter, EventFilters, EventType,
    MessageStatusData, SessionQrData, SessionStatusData, WebhookDisabledData,
};
pub use ids::{
    AuditId, CampaignId, DeliveryId, EventId, HookId, IdError, KeyId, MediaId, MessageId, OrgId, SessionId,
    WebhookId,
};
pub use key::{ApiKey, Scope};
pub use media::{Media, MediaContent, MediaKind};
pub use message::{
    ContactCard, Direction, EditContent, IllegalTransition, LocationContent, Message, MessageContent,
    MessageKind, MessageStatus, PollContent, ReactionContent, ReplyContext, RevokeContent, Sender,
    StatusChange, StatusEntry, TextContent,
};
pub use org::{Org, Quotas};
pub use phone::{Jid, PhoneError, PhoneNumber, Recipient};
pub use session::{ConnectorKind, Session, SessionStatus};
pub use template::{Hook, Template};
pub use webhook::{Attempt, Delivery, DeliveryStatus, Webhook};

/// Timestamps everywhere in wagate are UTC. Fields of API types spell the type out
/// (`chrono::DateTime<chrono::Utc>`) so that their OpenAPI schema says `date-time`.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// A source of the current time, injected so that tests and replays control it.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str`/`parse` (strum) and the JSON (serde) spell each value the same way.
    #[test]
    fn names_are_the_serde_names() {
        fn check<T: serde::Serialize + PartialEq + std::fmt::Debug + Copy>(
            values: &[T],
            as_str: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            for &value in values {
                assert_eq!(serde_json::to_value(value).unwrap(), as_str(value), "{value:?}");
                assert_eq!(parse(as_str(value)), Some(value));
            }
            assert_eq!(parse("nonsense"), None);
        }
        use MessageStatus as M;
        let statuses = [
            M::Scheduled,
            M::Queued,
            M::Sending,
            M::Sent,
            M::Delivered,
            M::Read,
            M::Failed,
            M::Received,
            M::Canceled,
        ];
        check(&statuses, MessageStatus::as_str, MessageStatus::parse);
        check(&[Direction::Out, Direction::In], Direction::as_str, Direction::parse);
        check(&MessageKind::ALL, MessageKind::as_str, MessageKind::parse);
        check(&[ConnectorKind::Sim, ConnectorKind::Web], ConnectorKind::as_str, ConnectorKind::parse);
        use SessionStatus::*;
        let sessions =
            [Created, Connecting, Qr, PairingCode, Connected, Disconnected, LoggedOut, SessionStatus::Failed];
        check(&sessions, SessionStatus::as_str, SessionStatus::parse);
        let campaigns = [
            CampaignState::Running,
            CampaignState::Paused,
            CampaignState::Canceled,
            CampaignState::Completed,
        ];
        check(&campaigns, CampaignState::as_str, CampaignState::parse);
        let deliveries = [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed];
        check(&deliveries, DeliveryStatus::as_str, DeliveryStatus::parse);
        assert_eq!(MediaKind::ALL.map(MediaKind::as_str), ["image", "video", "audio", "document", "sticker"]);
        for kind in MediaKind::ALL {
            assert_eq!(MediaKind::parse(kind.as_str()), Some(kind));
        }
    }
}
