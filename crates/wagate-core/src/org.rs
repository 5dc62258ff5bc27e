//! Organizations: the tenants of a gateway. Every session (with its messages, contacts,
//! trigger hooks and campaigns), webhook, template and media file belongs to one.

use serde::{Deserialize, Serialize};

use crate::OrgId;

/// An organization and its quotas.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub quotas: Quotas,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// What an organization may hold or do; `null` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Sessions it may have at once; creating one more is refused with 403 `quota_exceeded`.
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 4294967295_u64)]
    pub sessions: Option<u32>,
    /// Messages it may send per UTC day; one more is refused with 429 `quota_exceeded`.
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 4294967295_u64)]
    pub messages_per_day: Option<u32>,
}
