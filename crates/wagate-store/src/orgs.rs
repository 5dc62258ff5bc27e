//! Organizations: the tenants of a gateway, with their quotas.

use async_trait::async_trait;
use wagate_core::{Org, OrgId, Quotas, Timestamp};

use crate::StoreResult;

/// A change to an organization; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrgChange {
    pub name: Option<String>,
    pub quotas: Option<Quotas>,
}

/// Organizations.
#[async_trait]
pub trait Orgs: Send + Sync {
    /// `Conflict` when an organization with that id exists.
    async fn create_org(&self, id: OrgId, name: String, quotas: Quotas, now: Timestamp) -> StoreResult<Org>;
    async fn get_org(&self, id: &OrgId) -> StoreResult<Option<Org>>;
    async fn list_orgs(&self) -> StoreResult<Vec<Org>>;
    async fn update_org(&self, id: &OrgId, change: OrgChange, now: Timestamp) -> StoreResult<Option<Org>>;
    /// Deletes an empty organization (its API keys go with it); `Conflict` while it still has
    /// sessions, webhooks, templates or media files.
    async fn delete_org(&self, id: &OrgId) -> StoreResult<bool>;
    /// How many messages the organization's sessions accepted to send since `since`.
    async fn count_sent_since(&self, org: &OrgId, since: Timestamp) -> StoreResult<u64>;
}
