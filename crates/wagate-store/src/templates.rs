//! Templates (named message bodies with placeholders) and the trigger hooks that send them.

use async_trait::async_trait;
use wagate_core::{Hook, HookId, MessageContent, OrgId, SessionId, Template, Timestamp};

use crate::StoreResult;

/// A change to a template; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TemplateChange {
    pub content: Option<MessageContent>,
    /// `Some(None)` clears it.
    pub language: Option<Option<String>>,
}

/// A trigger hook to create; only the hash of its token is kept.
#[derive(Debug, Clone)]
pub struct NewHook {
    pub session_id: SessionId,
    pub token_hash: String,
    pub to: Vec<String>,
    pub template: Option<String>,
    pub description: Option<String>,
}

/// Templates (named within their organization) and trigger hooks.
#[async_trait]
pub trait Templates: Send + Sync {
    /// `Conflict` when a template of that name exists.
    async fn create_template(
        &self,
        org: &OrgId,
        name: String,
        language: Option<String>,
        content: MessageContent,
        now: Timestamp,
    ) -> StoreResult<Template>;
    async fn get_template(&self, org: &OrgId, name: &str) -> StoreResult<Option<Template>>;
    async fn list_templates(&self, org: &OrgId) -> StoreResult<Vec<Template>>;
    async fn update_template(
        &self,
        org: &OrgId,
        name: &str,
        change: TemplateChange,
        now: Timestamp,
    ) -> StoreResult<Option<Template>>;
    async fn delete_template(&self, org: &OrgId, name: &str) -> StoreResult<bool>;
    /// `NotFound` when the session does not exist.
    async fn create_hook(&self, new: NewHook, now: Timestamp) -> StoreResult<Hook>;
    async fn list_hooks(&self, session: &SessionId) -> StoreResult<Vec<Hook>>;
    async fn delete_hook(&self, session: &SessionId, id: &HookId) -> StoreResult<bool>;
    /// The hook with this token hash, marked used at `now`.
    async fn use_hook(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Hook>>;
}
