//! Who a session knows and the conversations it has: learned from the messages it receives
//! and, on WhatsApp, from the phone's contact list and history sync.

use serde::{Deserialize, Serialize};

/// A person a session knows of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    /// Their JID: the phone-number JID where known, else the LID.
    pub jid: String,
    /// Their phone number, E.164 without `+`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Their LID (`…@lid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
    /// The name the linked phone's address book gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The name they set on their own profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_name: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A conversation: with one person, or a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Chat {
    pub jid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub is_group: bool,
    /// When the last message that wagate knows of was sent or received in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}
