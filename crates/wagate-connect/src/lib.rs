//! wagate-connect: the `Connector` trait (how a session reaches WhatsApp) and the connectors.
//!
//! A connector is thin: it opens a connection for a session, sends messages through it and
//! reports what happens as [`ConnectorEvent`]s. Everything durable is the engine's job.

pub mod sim;
pub mod web;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use wagate_core::{
    Chat, ConnectorKind, Contact, Jid, Media, MediaId, MessageContent, MessageId, PhoneNumber, SessionId,
    Timestamp,
};

/// What a connector needs to open a session's connection.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub id: SessionId,
    /// Device credentials from an earlier link; `None` means link anew (QR or pairing code).
    pub credentials: Option<serde_json::Value>,
    /// Link with a pairing code for this phone instead of a QR code.
    pub pairing_phone: Option<PhoneNumber>,
}

/// A message for the connector to send.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub id: MessageId,
    pub to: Jid,
    pub content: MessageContent,
    /// WhatsApp's id of the message this one quotes.
    pub reply_to: Option<String>,
    /// Who the text or caption mentions.
    pub mentions: Vec<Jid>,
    /// For a reaction, edit or revoke of a message wagate has: WhatsApp's id for it and
    /// whether this session sent it. Without it the `message_id` given is WhatsApp's id (of a
    /// received message, for a reaction; of a sent one, for an edit or revoke).
    pub target: Option<Target>,
}

/// The message a reaction, edit or revoke is about, as WhatsApp addresses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub wa_id: String,
    pub from_me: bool,
}

/// A message that reached the session.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// WhatsApp's id; the same message delivered twice has the same id.
    pub wa_id: String,
    pub chat: Jid,
    pub from: Jid,
    pub content: MessageContent,
    pub at: Timestamp,
    /// WhatsApp's id of the message this one quotes.
    pub reply_to: Option<String>,
    pub mentions: Vec<Jid>,
    /// The author's LID, when `from` is their phone-number JID and WhatsApp told both.
    pub from_lid: Option<Jid>,
    /// The name the author set on their profile.
    pub push_name: Option<String>,
}

/// A delivery or read receipt for a message the session sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    Delivered,
    Read,
}

/// Tells the connector that an inbound message is stored, so it may acknowledge it to
/// WhatsApp. Dropping it without calling [`Ack::ack`] leaves the message unacknowledged,
/// and WhatsApp delivers it again.
#[derive(Debug)]
pub struct Ack(Option<oneshot::Sender<()>>);

impl Ack {
    /// An ack and the receiver the connector waits on.
    pub fn new() -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self(Some(tx)), rx)
    }

    pub fn ack(mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// What a connection reports, in the order it happened.
#[derive(Debug)]
pub enum ConnectorEvent {
    /// A QR code to scan; a new one replaces the previous one.
    Qr {
        code: String,
        expires_at: Timestamp,
    },
    /// A pairing code to type on the phone.
    PairingCode {
        code: String,
        expires_at: Timestamp,
    },
    /// The phone linked this session; `credentials` let it reconnect without a new link.
    Linked {
        phone: PhoneNumber,
        credentials: serde_json::Value,
    },
    /// The session is online.
    Connected {
        phone: PhoneNumber,
    },
    /// The connection ended. `reconnect` is true when trying again may work.
    Disconnected {
        reason: String,
        reconnect: bool,
    },
    /// The phone unlinked this session; its credentials are void.
    LoggedOut {
        reason: String,
    },
    /// The connection cannot work until something changes on this side (configuration,
    /// an upgrade): the session stops trying.
    Failed {
        reason: String,
    },
    /// Contacts and chats learned from the phone (contact list, history sync, profile names).
    Learned {
        contacts: Vec<Contact>,
        chats: Vec<Chat>,
    },
    Inbound {
        message: Box<InboundMessage>,
        ack: Ack,
    },
    Receipt {
        wa_id: String,
        receipt: Receipt,
        at: Timestamp,
    },
}

/// Where a connection sends its events. Unbounded because connectors report from
/// protocol callbacks that cannot wait; the session's task drains it continuously.
pub type EventSink = mpsc::UnboundedSender<ConnectorEvent>;

/// Why a send did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Trying again later may work (connection lost, timeout, server busy).
    #[error("{0}")]
    Retryable(String),
    /// It will never work; `code` is the reason users see (`recipient_not_on_whatsapp`).
    #[error("{code}: {message}")]
    Permanent { code: String, message: String },
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Permanent(String),
}

/// A live (or linking) connection of one session.
#[async_trait]
pub trait Connection: Send + Sync {
    /// Sends a message; on success returns WhatsApp's id for it.
    async fn send(&self, message: &OutboundMessage) -> Result<String, SendError>;
    /// Shows "typing…" in the chat with `to` until the next send (pacing). Connectors whose
    /// network has no such thing ignore it.
    async fn typing(&self, _to: &Jid) {}
    /// Which of `phones` have WhatsApp, as WhatsApp answers now.
    async fn check_numbers(&self, phones: &[PhoneNumber]) -> Result<Vec<NumberCheck>, SendError>;
    /// Tells the senders of received messages of `chat` that they were read (blue ticks).
    async fn mark_read(&self, chat: &Jid, messages: &[ReadMessage]) -> Result<(), SendError>;
    /// Closes the connection; the link stays, so a later connect needs no new QR.
    async fn disconnect(&self);
    /// Unlinks the device.
    async fn logout(&self);
}

/// A received message to mark read: WhatsApp's id for it, and in a group who wrote it.
#[derive(Debug, Clone)]
pub struct ReadMessage {
    pub wa_id: String,
    pub author: Option<Jid>,
}

/// Whether a phone number has WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberCheck {
    pub phone: PhoneNumber,
    pub on_whatsapp: bool,
    /// The JID to message it at, when it has WhatsApp.
    pub jid: Option<Jid>,
    /// Its LID, when WhatsApp told it.
    pub lid: Option<Jid>,
}

/// The media files wagate keeps, as connectors need them: to send a stored file, and to keep
/// a received one.
#[async_trait]
pub trait MediaFiles: Send + Sync {
    /// The bytes of a stored file.
    async fn load(&self, id: &MediaId) -> Result<Vec<u8>, String>;
    /// Stores a file `session` received (its type is sniffed from the bytes); it belongs to
    /// the session's organization.
    async fn store(
        &self,
        session: &SessionId,
        bytes: Vec<u8>,
        filename: Option<String>,
    ) -> Result<Media, String>;
}

/// A way of reaching WhatsApp.
#[async_trait]
pub trait Connector: Send + Sync {
    fn kind(&self) -> ConnectorKind;
    /// Opens a connection; from then on its events go to `events`.
    async fn connect(
        &self,
        spec: SessionSpec,
        events: EventSink,
    ) -> Result<Box<dyn Connection>, ConnectError>;
    /// Drops what the connector keeps for a session that was logged out or deleted while it
    /// had no connection.
    async fn forget(&self, session: &SessionId);
}
