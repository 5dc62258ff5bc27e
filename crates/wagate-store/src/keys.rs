//! API keys of organizations: kept by the hash of their secret.

use async_trait::async_trait;
use wagate_core::{ApiKey, KeyId, OrgId, Timestamp};

use crate::StoreResult;

/// API keys.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// Records a key with the hash of its secret; `NotFound` when its organization does not exist.
    async fn create_key(&self, key: &ApiKey, secret_hash: &str) -> StoreResult<()>;
    /// The key whose secret hashes to `secret_hash`, revoked or expired ones included.
    async fn find_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn get_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>>;
    /// Every key, or only one organization's, newest first.
    async fn list_keys(&self, org: Option<&OrgId>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key (it stays listed, revoked); `None` when there is no such key.
    async fn revoke_key(&self, id: &KeyId, now: Timestamp) -> StoreResult<Option<ApiKey>>;
    /// Records when keys were last used, in one write.
    async fn record_key_use(&self, uses: &[(KeyId, Timestamp)]) -> StoreResult<()>;
}
