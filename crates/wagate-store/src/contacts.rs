//! What a session learns of its contacts and chats.

use async_trait::async_trait;
use wagate_core::{Chat, Contact, SessionId};

use crate::StoreResult;

/// Contacts and chats, per session.
#[async_trait]
pub trait Contacts: Send + Sync {
    /// Records what was learned of contacts: a field left `None` keeps what is known.
    async fn save_contacts(&self, session: &SessionId, contacts: Vec<Contact>) -> StoreResult<()>;
    /// A session's contacts by JID, after `after`.
    async fn list_contacts(
        &self,
        session: &SessionId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Contact>>;
    /// Records what was learned of chats: a name left `None` keeps what is known, and the last
    /// message time only moves forward.
    async fn save_chats(&self, session: &SessionId, chats: Vec<Chat>) -> StoreResult<()>;
    /// A session's chats, most recent activity first.
    async fn list_chats(&self, session: &SessionId, offset: u32, limit: u32) -> StoreResult<Vec<Chat>>;
}
