//! Virtual contacts: accounts whose only device is a real whatsapp-rust
//! client running inside the fake, so a test can make "a person" write to a
//! session and see what that person received. They send delivered and read
//! receipts by themselves, after configurable delays.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use whatsapp_rust::download::MediaType;
use whatsapp_rust::types::events::{Event, InboundMessage};
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, InboundDurabilityHook, Jid};

use crate::companion::{image_message, Companion, Options};
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

/// A message a virtual contact sent, as `GET /control/contacts/{phone}/sent` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Sent {
    pub id: String,
    pub to: String,
    /// Receipts the recipient sent back for it, in order ("delivered", "read", "played").
    pub receipts: Vec<String>,
}

pub(crate) struct Contact {
    pub companion: Companion,
    inbox: Arc<Mutex<Vec<Received>>>,
    /// (message id, recipient) of what the contact sent.
    sent: Mutex<Vec<(String, String)>>,
}

impl Contact {
    pub(crate) fn received(&self) -> Vec<Received> {
        self.inbox.lock().clone()
    }

    /// What the contact sent, with the receipts its client has seen for each message.
    pub(crate) fn sent(&self) -> Vec<Sent> {
        let events = self.companion.events();
        let sent = self.sent.lock().clone();
        sent.into_iter()
            .map(|(id, to)| {
                let receipts = events
                    .iter()
                    .filter_map(|event| match &**event {
                        Event::Receipt(r) if r.message_ids.contains(&id) => receipt_name(&r.r#type),
                        _ => None,
                    })
                    .map(str::to_owned)
                    .collect();
                Sent { id, to, receipts }
            })
            .collect()
    }
}

fn receipt_name(kind: &ReceiptType) -> Option<&'static str> {
    match kind {
        ReceiptType::Delivered => Some("delivered"),
        ReceiptType::Read => Some("read"),
        ReceiptType::Played => Some("played"),
        _ => None,
    }
}

/// (type, text or caption) of a message.
fn describe(message: &wa::Message) -> (String, Option<String>) {
    if let Some(text) = &message.conversation {
        return ("text".into(), Some(text.clone()));
    }
    if let Some(ext) = message.extended_text_message.as_option() {
        return ("text".into(), ext.text.clone());
    }
    if let Some(img) = message.image_message.as_option() {
        return ("image".into(), img.caption.clone());
    }
    if let Some(doc) = message.document_message.as_option() {
        return ("document".into(), doc.caption.clone());
    }
    if message.video_message.is_set() {
        return ("video".into(), None);
    }
    if message.audio_message.is_set() {
        return ("audio".into(), None);
    }
    ("other".into(), None)
}

/// Downloads the message's media, if any, and hashes what came back: the
/// hash proves the bytes made it through upload, the fake and download.
async fn media_sha256(client: &Client, message: &wa::Message) -> Option<String> {
    let downloaded = if let Some(m) = message.image_message.as_option() {
        client.download(m).await
    } else if let Some(m) = message.document_message.as_option() {
        client.download(m).await
    } else if let Some(m) = message.video_message.as_option() {
        client.download(m).await
    } else if let Some(m) = message.audio_message.as_option() {
        client.download(m).await
    } else {
        return None;
    };
    match downloaded {
        Ok(bytes) => Some(format!("{:x}", Sha256::digest(&bytes))),
        Err(e) => {
            tracing::warn!(error = %e, "virtual contact could not download media");
            None
        }
    }
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
            let (kind, body) = describe(&m.message);
            let sha256 = media_sha256(&client, &m.message).await;
            let id = m.info.id.clone();
            let chat = m.info.source.chat.clone();
            let inbox = Arc::clone(&self.inbox);
            let mut list = inbox.lock();
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
    let mut list = inbox.lock();
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
    let options = Options { durability_hook: Some(hook), ..Options::named(&name) };
    let companion = Companion::link(server, &ws_url, phone, options).await?;
    if let Some(account) = server.state().registry.accounts.get_mut(phone) {
        account.name = Some(name);
    }
    server.add_contact(phone, Arc::new(Contact { companion, inbox, sent: Mutex::new(Vec::new()) }));
    Ok(())
}

/// What the contact should send, as `POST /control/contacts/{phone}/messages` takes it.
#[derive(Debug, serde::Deserialize)]
pub struct Outgoing {
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<TextBody>,
    pub image: Option<ImageBody>,
}

#[derive(Debug, serde::Deserialize)]
pub struct TextBody {
    pub body: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct ImageBody {
    /// The image, base64.
    pub data: String,
    pub mimetype: Option<String>,
    pub caption: Option<String>,
}

/// Makes the contact send; returns the message id.
pub async fn send(server: &FakeServer, phone: &str, out: Outgoing) -> Result<String> {
    let contact = server.contact(phone).ok_or_else(|| anyhow!("no virtual contact {phone}"))?;
    if !out.to.bytes().all(|b| b.is_ascii_digit()) || out.to.is_empty() {
        bail!("to must be a phone number (digits only)");
    }
    let client = &contact.companion.client;
    let message = match out.kind.as_str() {
        "text" => {
            let text = out.text.ok_or_else(|| anyhow!("a text message needs text.body"))?;
            wa::Message { conversation: Some(text.body), ..Default::default() }
        }
        "image" => {
            let image = out.image.ok_or_else(|| anyhow!("an image message needs image.data"))?;
            let data = STANDARD
                .decode(image.data.as_bytes())
                .map_err(|e| anyhow!("image.data is not base64: {e}"))?;
            let up = client.upload(data, MediaType::Image, UploadOptions::default()).await?;
            image_message(up, image.mimetype.as_deref().unwrap_or("image/jpeg"), image.caption)
        }
        other => bail!("message type {other:?} is not supported (text, image)"),
    };
    let sent = client.send_message(Jid::pn(out.to.as_str()), message).await?;
    contact.sent.lock().push((sent.message_id.clone(), out.to));
    Ok(sent.message_id)
}
