//! Sessions: the accounts wagate runs, their settings and their connection state.

use async_trait::async_trait;
use wagate_core::{ConnectorKind, OrgId, Session, SessionId, SessionStatus, Timestamp};

use crate::{Appended, StoreResult};

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub org_id: OrgId,
    pub connector: ConnectorKind,
    pub name: Option<String>,
    pub config: serde_json::Value,
    pub metadata: serde_json::Value,
}

/// A change to a session's connection state, written with its `session.status` event.
#[derive(Debug, Clone, Default)]
pub struct SessionChange {
    pub status: Option<SessionStatus>,
    /// Replaces the status reason (None clears it) whenever `status` is set.
    pub reason: Option<String>,
    pub phone: Option<String>,
    pub jid: Option<String>,
    pub credentials: Credentials,
    pub auto_connect: Option<bool>,
    /// The node making the change, named in the `session.status` event.
    pub node_id: Option<String>,
    /// With status `pairing_code`: the code and when it expires, for the event.
    pub pairing_code: Option<(String, Timestamp)>,
    /// The lease of the node making the change: refused (`Fenced`) unless still current.
    pub lease: Option<i64>,
}

/// What to do with a session's stored device credentials.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    #[default]
    Keep,
    Set(serde_json::Value),
    /// Forget them and the linked phone (logout).
    Clear,
}

/// Sessions and their connection state.
#[async_trait]
pub trait Sessions: Send + Sync {
    async fn create_session(&self, new: NewSession, now: Timestamp) -> StoreResult<(Session, Appended)>;
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>>;
    /// Every session, or only those of one organization.
    async fn list_sessions(&self, org: Option<&OrgId>) -> StoreResult<Vec<Session>>;
    /// The sessions of `connector` linked to any of `phones`, in one query: for a number
    /// several sessions were linked to, the one with the lowest id.
    async fn find_linked_sessions(
        &self,
        connector: ConnectorKind,
        phones: &[&str],
    ) -> StoreResult<Vec<Session>>;
    /// Deletes the session with its messages and queue; its events stay in the log.
    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool>;
    /// Applies a change; appends a `session.status` event when the status is set.
    async fn update_session(
        &self,
        id: &SessionId,
        change: SessionChange,
        now: Timestamp,
    ) -> StoreResult<(Session, Option<Appended>)>;
}
