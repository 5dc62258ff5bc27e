//! The audit log's entries: who (a key, a JWT subject, the admin key, or an unknown caller
//! refused), from where, did what (method, route template, the ids it named) with which answer.
//! Never a request's body, never a secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AuditId, OrgId};

/// Who made a call, as the audit log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The gateway's admin key.
    Admin,
    /// An API key (`actor_id` is its id).
    Key,
    /// A JWT (`actor_id` is its subject).
    Jwt,
    /// Credentials that named no one (a refused authentication).
    Anonymous,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Admin => "admin",
            ActorKind::Key => "key",
            ActorKind::Jwt => "jwt",
            ActorKind::Anonymous => "anonymous",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ActorKind::Admin, ActorKind::Key, ActorKind::Jwt, ActorKind::Anonymous]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// `aud_…`; assigned when it is written (absent before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<AuditId>,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
    pub actor_kind: ActorKind,
    /// The key id or the JWT subject.
    pub actor_id: Option<String>,
    /// The caller's organization; none for the admin key and refused callers.
    pub org_id: Option<OrgId>,
    /// The address the request came from.
    pub source: Option<String>,
    pub method: String,
    /// The route template, such as `/v1/sessions/{id}/messages`.
    pub route: String,
    /// The ids the route named, by the template's names (`{"id": "sales-1"}`).
    pub target: BTreeMap<String, String>,
    /// The answer's HTTP status.
    pub status: u16,
}
