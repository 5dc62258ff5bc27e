//! Sessions: the connectors they use and the statuses they go through.

use serde::{Deserialize, Serialize};

/// How a session reaches WhatsApp.
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
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ConnectorKind {
    /// The built-in simulated network.
    Sim,
    /// WhatsApp Web multi-device.
    Web,
}

impl ConnectorKind {
    /// Its name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// A session's connection status as users see it.
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
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SessionStatus {
    Created,
    Connecting,
    Qr,
    PairingCode,
    Connected,
    Disconnected,
    LoggedOut,
    Failed,
}

impl SessionStatus {
    /// Its name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// True while a connection attempt or a live connection exists.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            SessionStatus::Connecting
                | SessionStatus::Qr
                | SessionStatus::PairingCode
                | SessionStatus::Connected
        )
    }
}

/// A session as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub id: crate::SessionId,
    /// The organization it belongs to, with its messages, contacts, hooks and campaigns.
    pub org_id: crate::OrgId,
    pub connector: ConnectorKind,
    pub name: Option<String>,
    pub status: SessionStatus,
    pub status_reason: Option<String>,
    /// The linked account's phone number.
    pub phone: Option<String>,
    pub jid: Option<String>,
    pub config: serde_json::Value,
    pub metadata: serde_json::Value,
    pub last_connected_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The connector's device credentials; only the owner node reads them, never the API.
    #[serde(skip)]
    pub credentials: Option<serde_json::Value>,
    /// Whether wagate keeps this session connected (set by connect, cleared by disconnect and logout).
    #[serde(skip)]
    pub auto_connect: bool,
}
