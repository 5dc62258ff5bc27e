//! The audit log: who changed what through the API, and every refused authentication.

use async_trait::async_trait;
use wagate_core::{AuditEntry, AuditId, OrgId, Timestamp};

use crate::StoreResult;

/// Filters for reading the audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub org_id: Option<OrgId>,
    /// A key id or a JWT subject.
    pub actor_id: Option<String>,
    pub method: Option<String>,
    /// A route template, such as `/v1/sessions/{id}`.
    pub route: Option<String>,
    pub status: Option<u16>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Entries older than this one (the previous page's `next_before`).
    pub before: Option<AuditId>,
    pub limit: u32,
}

/// The audit log.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends entries (their ids are assigned here), in one write.
    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    async fn list_audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>>;
    /// Deletes up to `limit` entries older than `before`; answers how many.
    async fn expire_audit(&self, before: Timestamp, limit: u32) -> StoreResult<u64>;
}
