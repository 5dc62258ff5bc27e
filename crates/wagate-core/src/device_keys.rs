//! What connectors keep for each session's device (keys, protocol state). The trait lives in
//! core, not in the store, so that a connector depends on no database crate; the store
//! implements it.

use async_trait::async_trait;

use crate::SessionId;

/// One value a connector keeps for a session's device, in a namespace (`kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    pub kind: String,
    pub key: String,
    pub value: Vec<u8>,
    /// What the kind makes of it: a flag, or a time (seconds) after which the row may go.
    pub number: i64,
}

impl DeviceKey {
    pub fn new(kind: &str, key: impl Into<String>, value: impl Into<Vec<u8>>, number: i64) -> Self {
        Self { kind: kind.to_owned(), key: key.into(), value: value.into(), number }
    }
}

/// Why device keys could not be read or written: the keeper's own error, boxed so that core
/// knows nothing of the database behind it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DeviceKeysError(pub Box<dyn std::error::Error + Send + Sync>);

pub type DeviceKeysResult<T> = Result<T, DeviceKeysError>;

/// What connectors keep for each session's device (keys, protocol state), kept in the same
/// database as everything else so that a session can move between nodes. Writes need no
/// lease: only the node running a session writes its keys.
#[async_trait]
pub trait DeviceKeys: Send + Sync + 'static {
    /// The values of those `keys` of `kind` that exist, in no particular order.
    async fn get_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
    ) -> DeviceKeysResult<Vec<DeviceKey>>;
    /// Every value of `kind` whose key starts with `prefix` (all of them for `""`), by key.
    async fn scan_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        prefix: &str,
    ) -> DeviceKeysResult<Vec<DeviceKey>>;
    /// Whether any value of one of `kinds` has a key starting with one of `prefixes`.
    async fn any_device_key(
        &self,
        session: &SessionId,
        kinds: &[&str],
        prefixes: &[&str],
    ) -> DeviceKeysResult<bool>;
    /// Inserts or replaces values, all in one transaction (of one key given twice, the last).
    async fn put_device_keys(&self, session: &SessionId, keys: Vec<DeviceKey>) -> DeviceKeysResult<()>;
    /// Deletes those keys of `kind`; answers how many there were.
    async fn delete_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
    ) -> DeviceKeysResult<u64>;
    /// Deletes the values of `kind` whose key starts with `prefix`; answers how many.
    async fn delete_device_keys_by_prefix(
        &self,
        session: &SessionId,
        kind: &str,
        prefix: &str,
    ) -> DeviceKeysResult<u64>;
    /// Deletes the values of `kind` whose number is positive and below `before`; answers how many.
    async fn expire_device_keys(&self, session: &SessionId, kind: &str, before: i64)
        -> DeviceKeysResult<u64>;
    /// Sets the number of those keys of `kind` that exist; inserts nothing.
    async fn set_device_key_numbers(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
        number: i64,
    ) -> DeviceKeysResult<()>;
    /// Deletes one value and answers it (so that two takers cannot both have it).
    async fn take_device_key(
        &self,
        session: &SessionId,
        kind: &str,
        key: &str,
    ) -> DeviceKeysResult<Option<DeviceKey>>;
    /// Deletes everything kept for a session's device (when it logs out).
    async fn clear_device_keys(&self, session: &SessionId) -> DeviceKeysResult<()>;
}
