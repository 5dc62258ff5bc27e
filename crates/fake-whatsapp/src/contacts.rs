//! Virtual contacts: accounts whose only device is a real whatsapp-rust
//! client running inside the fake, so a test can make "a person" write to a
//! session and see what that person received. They send delivered and read
//! receipts by themselves, after configurable delays.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use whatsapp_rust::types::events::InboundMessage;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, InboundDurabilityHook, Jid};

use crate::companion::{Companion, Options};
use crate::server::FakeServer;

/// A message a virtual contact received, as `GET /control/contacts/{phone}/messages` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Received {
    pub id: String,
    /// The sender's phone number (or LID user when it wrote LID-addressed).
    pub from: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Hex SHA-256 of the media plaintext, for media messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Receipts the contact sent for it, in order ("delivered", "read").
    pub receipts: Vec<String>,
}

pub(crate) struct Contact {
    pub companion: Companion,
    inbox: Arc<Mutex<Vec<Received>>>,
}

impl Contact {
    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn describe(message: &wa::Message) -> (String, Option<String>, Option<String>) {
    let hex =
        |b: &Option<Vec<u8>>| b.as_ref().map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>());
    if let Some(text) = &message.conversation {
        return ("text".into(), Some(text.clone()), None);
    }
    if let Some(ext) = message.extended_text_message.as_option() {
        return ("text".into(), ext.text.clone(), None);
    }
    if let Some(img) = message.image_message.as_option() {
        return ("image".into(), img.caption.clone(), hex(&img.file_sha256));
    }
    if let Some(doc) = message.document_message.as_option() {
        return ("document".into(), doc.caption.clone(), hex(&doc.file_sha256));
    }
    if let Some(video) = message.video_message.as_option() {
        return ("video".into(), video.caption.clone(), hex(&video.file_sha256));
    }
    if let Some(audio) = message.audio_message.as_option() {
        return ("audio".into(), None, hex(&audio.file_sha256));
    }
    ("other".into(), None, None)
}

/// Records what arrives, holds the delivery receipt back for the configured
/// delay (the client sends it once this hook commits), then reads it later.
struct Inbox {
    inbox: Arc<Mutex<Vec<Received>>>,
    delivery_delay: Duration,
    read_delay: Option<Duration>,
}

#[whatsapp_rust::async_trait]
impl InboundDurabilityHook for Inbox {
    async fn on_messages(
        &self,
        client: Arc<Client>,
        batch: &[InboundMessage],
    ) -> whatsapp_rust::anyhow::Result<()> {
        let mut new = Vec::new();
        for m in batch {
            if m.info.source.is_from_me {
                continue;
            }
            let (kind, body, sha256) = describe(&m.message);
            let id = m.info.id.clone();
            let chat = m.info.source.chat.clone();
            let inbox = Arc::clone(&self.inbox);
            let mut list = inbox.lock().unwrap_or_else(|p| p.into_inner());
            // The hook is idempotent: a redelivered message is recorded once.
            if !list.iter().any(|r| r.id == id) {
                list.push(Received {
                    id: id.clone(),
                    from: m.info.source.sender.user.to_string(),
                    kind,
                    body,
                    sha256,
                    receipts: Vec::new(),
                });
                new.push((id, chat));
            }
        }
        tokio::time::sleep(self.delivery_delay).await;
        for (id, chat) in new {
            mark(&self.inbox, &id, "delivered");
            let Some(delay) = self.read_delay else { continue };
            let (client, inbox) = (Arc::clone(&client), Arc::clone(&self.inbox));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                match client.mark_as_read(&chat, None, &[id.as_str()]).await {
                    Ok(()) => mark(&inbox, &id, "read"),
                    Err(e) => tracing::warn!(error = %e, "virtual contact could not send a read receipt"),
                }
            });
        }
        Ok(())
    }
}

fn mark(inbox: &Mutex<Vec<Received>>, id: &str, receipt: &str) {
    let mut list = inbox.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = list.iter_mut().find(|r| r.id == id) {
        r.receipts.push(receipt.to_owned());
    }
}

/// Starts (or returns) the virtual contact of `phone`: a client linked to
/// that account, connected when this returns.
pub async fn start(server: &FakeServer, phone: &str, name: Option<String>) -> Result<()> {
    if server.contact(phone).is_some() {
        return Ok(());
    }
    let ws_url = server.ws_url().ok_or_else(|| anyhow!("the server is not listening"))?;
    let config = &server.inner.config;
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let hook = Arc::new(Inbox {
        inbox: Arc::clone(&inbox),
        delivery_delay: config.contact_delivery_delay,
        read_delay: config.contact_read_delay,
    });
    let name = name.unwrap_or_else(|| format!("Contact {phone}"));
    let options = Options { push_name: name.clone(), backend: None, durability_hook: Some(hook) };
    let companion = Companion::link(server, &ws_url, phone, options).await?;
    if let Some(account) = server.state().registry.accounts.get_mut(phone) {
        account.name = Some(name);
    }
    server.add_contact(phone, Arc::new(Contact { companion, inbox }));
    Ok(())
}

/// What the contact should send, as `POST /control/contacts/{phone}/messages` takes it.
#[derive(Debug, serde::Deserialize)]
pub struct Outgoing {
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<TextBody>,
}

#[derive(Debug, serde::Deserialize)]
pub struct TextBody {
    pub body: String,
}

/// Makes the contact send; returns the message id.
pub async fn send(server: &FakeServer, phone: &str, out: Outgoing) -> Result<String> {
    let contact = server.contact(phone).ok_or_else(|| anyhow!("no virtual contact {phone}"))?;
    if !out.to.bytes().all(|b| b.is_ascii_digit()) || out.to.is_empty() {
        bail!("to must be a phone number (digits only)");
    }
    let message = match (out.kind.as_str(), out.text) {
        ("text", Some(text)) => wa::Message { conversation: Some(text.body), ..Default::default() },
        ("text", None) => bail!("a text message needs text.body"),
        (other, _) => bail!("message type {other:?} is not supported"),
    };
    let sent = contact.companion.client.send_message(Jid::pn(out.to.as_str()), message).await?;
    Ok(sent.message_id)
}
