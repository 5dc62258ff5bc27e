//! What is asked of a session's open connection on this node besides its queue: which
//! numbers have WhatsApp, read receipts; and what a reaction, edit or revoke points at.

use std::sync::Arc;

use wagate_connect::{Connection, NumberCheck, ReadMessage, SendError, Target};
use wagate_core::{Jid, Message, MessageContent, MessageId, PhoneNumber, SessionId};

use super::{Engine, SessionError};

impl Engine {
    /// Holds the session's open connection on this node (None once it is closed).
    pub(super) fn set_connection(&self, id: &SessionId, connection: Option<Arc<dyn Connection>>) {
        let mut slots = self.slots.lock();
        match connection {
            Some(connection) => slots.entry(id.clone()).or_default().connection = Some(connection),
            None => {
                if let Some(slot) = slots.get_mut(id) {
                    slot.connection = None;
                }
            }
        }
    }

    /// The session's open connection on this node.
    async fn connection(&self, id: &SessionId) -> Result<Arc<dyn Connection>, SessionError> {
        let connection = self.slots.lock().get(id).and_then(|slot| slot.connection.clone());
        match connection {
            Some(connection) => Ok(connection),
            None => Err(match self.store.get_session(id).await? {
                None => SessionError::NotFound,
                Some(_) => SessionError::NotRunning,
            }),
        }
    }

    /// Asks WhatsApp, through the session's connection on this node, which numbers have it.
    pub(crate) async fn check_numbers(
        &self,
        id: &SessionId,
        phones: &[PhoneNumber],
    ) -> Result<Result<Vec<NumberCheck>, SendError>, SessionError> {
        Ok(self.connection(id).await?.check_numbers(phones).await)
    }

    /// Sends read receipts for received messages of one chat, through the session's connection
    /// on this node.
    pub(crate) async fn mark_read(
        &self,
        id: &SessionId,
        chat: &Jid,
        messages: &[ReadMessage],
    ) -> Result<Result<(), SendError>, SessionError> {
        Ok(self.connection(id).await?.mark_read(chat, messages).await)
    }

    /// For a reaction, edit or revoke of a message of the same session given by wagate's id:
    /// WhatsApp's id for it and whether the session sent it.
    pub(super) async fn target(&self, message: &Message) -> Option<Target> {
        let named = match &message.content {
            MessageContent::Reaction { reaction } => &reaction.message_id,
            MessageContent::Edit { edit } => &edit.message_id,
            MessageContent::Revoke { revoke } => &revoke.message_id,
            _ => return None,
        };
        let id = MessageId::parse(named).ok()?;
        let target = self.store.get_message(&id).await.ok().flatten()?;
        (target.session_id == message.session_id).then_some(())?;
        Some(Target { wa_id: target.wa_id?, from_me: target.direction == wagate_core::Direction::Out })
    }
}
