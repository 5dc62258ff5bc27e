//! API keys: what a key of an organization may do ([`Scope`]) and what is kept of it.

use serde::{Deserialize, Serialize};

use crate::{KeyId, OrgId, SessionId};

/// What a key (or a JWT) may do. `admin` may do everything within its organization, API keys
/// and the audit log included; `sessions:manage` includes `sessions:read`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Scope {
    #[serde(rename = "sessions:read")]
    SessionsRead,
    #[serde(rename = "sessions:manage")]
    SessionsManage,
    #[serde(rename = "messages:send")]
    MessagesSend,
    #[serde(rename = "messages:read")]
    MessagesRead,
    /// Webhooks and trigger hooks.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    /// Templates and campaigns.
    #[serde(rename = "templates:manage")]
    TemplatesManage,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// Whether holding `self` allows what `wanted` allows.
    pub fn grants(self, wanted: Scope) -> bool {
        self == wanted
            || self == Scope::Admin
            || (self == Scope::SessionsManage && wanted == Scope::SessionsRead)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SessionsRead => "sessions:read",
            Scope::SessionsManage => "sessions:manage",
            Scope::MessagesSend => "messages:send",
            Scope::MessagesRead => "messages:read",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::TemplatesManage => "templates:manage",
            Scope::Admin => "admin",
        }
    }
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::SessionsRead,
        Scope::SessionsManage,
        Scope::MessagesSend,
        Scope::MessagesRead,
        Scope::WebhooksManage,
        Scope::TemplatesManage,
        Scope::Admin,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// An API key of an organization, as kept (its secret only as a hash, never here).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: KeyId,
    pub org_id: OrgId,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The sessions it is limited to; `null` for every session of its organization.
    pub sessions: Option<Vec<SessionId>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was last used, to within `auth.last_used_flush_ms`.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ApiKey {
    /// Whether it opens the API at `now`: not revoked, not expired.
    pub fn is_valid(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}
