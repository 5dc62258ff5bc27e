//! The `web` connector: real WhatsApp accounts linked as a companion device (like WhatsApp
//! Web), through whatsapp-rust. A session's device keys are kept in wagate's store
//! ([`SessionKeys`]), so they survive restarts and move with the session between nodes.
//!
//! The connector is thin: events become [`ConnectorEvent`]s, inbound messages are
//! acknowledged to WhatsApp only once the engine has stored them (the crate's inbound
//! durability hook), and a send returns when WhatsApp's server acknowledged it.

mod keys;
pub mod mapping;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use wagate_core::{ConnectorKind, DeviceKeys, Jid, MediaContent, MessageContent, PhoneNumber, SessionId};
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::http::UreqHttpClient;
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::send::{EditOptions, RevokeType, SendOptions};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::{Event, EventHandler};
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, InboundDurabilityHook};

pub use keys::SessionKeys;
use mapping::{Change, Inbound};

use crate::{
    Ack, ConnectError, Connection, Connector, ConnectorEvent, EventSink, InboundMessage, MediaFiles,
    NumberCheck, OutboundMessage, ReadMessage, SendError, SessionSpec,
};

/// Whether this build skips WhatsApp's certificate checks, so that it can reach a local test
/// server (the `local-whatsapp` feature). Such a build must never reach real WhatsApp.
pub const SKIPS_CERTIFICATE_CHECKS: bool = cfg!(feature = "local-whatsapp");

/// How the web connector reaches WhatsApp.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// WhatsApp Web's WebSocket endpoint (another one for a local test server).
    pub ws_url: String,
    /// The WhatsApp Web version the client announces (`2.3000.1023456789`); `None` asks
    /// web.whatsapp.com for the current one at each connect.
    pub client_version: Option<(u32, u32, u32)>,
    /// How long a send waits for WhatsApp's server to acknowledge it.
    pub ack_timeout: Duration,
    /// How long an inbound message waits to be stored before it is left unacknowledged
    /// (WhatsApp then delivers it again).
    pub store_timeout: Duration,
    /// How long a connection may go without a word from WhatsApp (its handshake, a QR code,
    /// a pairing code, a refusal) before it is reported unreachable. The client retries
    /// on its own without telling anyone, so without this a session would say `connecting`
    /// forever.
    pub connect_timeout: Duration,
}

impl WebConfig {
    /// WhatsApp Web's own WebSocket endpoint, the default `ws_url`.
    pub const WHATSAPP_WS_URL: &'static str = "wss://web.whatsapp.com/ws/chat";
    /// The default `ack_timeout`.
    pub const ACK_TIMEOUT: Duration = Duration::from_secs(20);
    /// The default `connect_timeout`.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            ws_url: Self::WHATSAPP_WS_URL.into(),
            client_version: None,
            ack_timeout: Self::ACK_TIMEOUT,
            store_timeout: Duration::from_secs(60),
            connect_timeout: Self::CONNECT_TIMEOUT,
        }
    }
}

/// Parses a client version (`2.3000.1023456789`).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

pub struct WebConnector {
    keys: Arc<dyn DeviceKeys>,
    media: Arc<dyn MediaFiles>,
    config: WebConfig,
    /// One HTTP client (and connection pool) for every session's media transfers.
    http: UreqHttpClient,
}

impl WebConnector {
    pub fn new(keys: Arc<dyn DeviceKeys>, media: Arc<dyn MediaFiles>, config: WebConfig) -> Self {
        Self { keys, media, config, http: UreqHttpClient::new() }
    }

    /// Builds a session's client without connecting it: its device is loaded from (or, for a
    /// new session, created in) the store.
    pub async fn build(
        &self,
        spec: &SessionSpec,
        sink: EventSink,
    ) -> Result<(Bot, Arc<Shared>), ConnectError> {
        let shared = Arc::new(Shared {
            session: spec.id.clone(),
            sink,
            media: Arc::clone(&self.media),
            acks: Mutex::new(HashMap::new()),
            client: OnceLock::new(),
            store_timeout: self.config.store_timeout,
            answered: AtomicBool::new(false),
        });
        let backend = Arc::new(SessionKeys::new(Arc::clone(&self.keys), spec.id.clone()));
        let mut builder = Bot::builder()
            .with_backend_arc(backend)
            .with_transport_factory(
                TokioWebSocketTransportFactory::new().with_url(self.config.ws_url.clone()),
            )
            .with_http_client(self.http.clone())
            .with_inbound_durability_hook(StoreFirst(Arc::clone(&shared)))
            .with_event_handler(Events(Arc::clone(&shared)));
        if let Some(version) = self.config.client_version {
            builder = builder.with_version(version);
        }
        if let Some(phone) = &spec.pairing_phone {
            builder = builder.with_pair_code(PairCodeOptions {
                phone_number: phone.as_str().to_owned(),
                ..Default::default()
            });
        }
        let bot = builder
            .build()
            .await
            .map_err(|e| ConnectError::Retryable(format!("cannot start the client: {e}")))?;
        let client = bot.client();
        // A gateway is always "at the screen": its delivery receipts are the ones senders see
        // as delivered. Without this the client sends them `inactive` (not shown) unless it
        // announces itself available, which would also announce a name for the account.
        client.set_force_active_delivery_receipts(true);
        let _ = shared.client.set(Arc::downgrade(&client));
        Ok((bot, shared))
    }
}

#[async_trait]
impl Connector for WebConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Web
    }

    async fn connect(
        &self,
        spec: SessionSpec,
        events: EventSink,
    ) -> Result<Box<dyn Connection>, ConnectError> {
        let (bot, shared) = self.build(&spec, events).await?;
        let client = bot.client();
        let handle = bot.spawn();
        let watchdog = tokio::spawn(unanswered(
            Arc::downgrade(&shared),
            self.config.connect_timeout,
            self.config.ws_url.clone(),
        ));
        Ok(Box::new(WebConnection {
            client,
            handle: tokio::sync::Mutex::new(Some(handle)),
            shared,
            ack_timeout: self.config.ack_timeout,
            watchdog: watchdog.abort_handle(),
        }))
    }

    async fn forget(&self, session: &SessionId) {
        if let Err(e) = self.keys.clear_device_keys(session).await {
            tracing::warn!(error = %e, "could not delete the device keys of a logged-out session");
        }
    }
}

/// Reports the connection unreachable (to be tried again) when WhatsApp has said nothing
/// within `timeout`: the client keeps retrying a refused or silent server without an event.
/// A connection whose handshake WhatsApp answered counts as answered even before `connected`,
/// which can wait minutes for the first app-state sync of a busy account.
async fn unanswered(shared: Weak<Shared>, timeout: Duration, url: String) {
    tokio::time::sleep(timeout).await;
    if let Some(shared) = shared.upgrade() {
        let handshaken = shared.client.get().and_then(Weak::upgrade).is_some_and(|c| c.is_connected());
        if !handshaken && !shared.answered.load(Ordering::Acquire) {
            shared.emit(ConnectorEvent::Disconnected {
                reason: mapping::unreachable_reason(&url, timeout),
                reconnect: true,
            });
        }
    }
}

/// What a session's client shares with its event handler and durability hook.
pub struct Shared {
    session: SessionId,
    sink: EventSink,
    media: Arc<dyn MediaFiles>,
    /// Sends waiting for the server's ack, by WhatsApp message id: `Some(code)` on a nack.
    acks: Mutex<HashMap<String, oneshot::Sender<Option<String>>>>,
    /// Weak: the client holds the event handler that holds this.
    client: OnceLock<Weak<Client>>,
    store_timeout: Duration,
    /// Whether WhatsApp has answered this connection yet (see [`unanswered`]).
    answered: AtomicBool,
}

impl Shared {
    fn emit(&self, event: ConnectorEvent) {
        let _ = self.sink.send(event);
    }

    fn own_phone(&self) -> Option<PhoneNumber> {
        self.client.get().and_then(Weak::upgrade).and_then(|c| c.pn()).and_then(|jid| mapping::phone_of(&jid))
    }
}

/// Turns the client's events into connector events, in the order they happen (the handler
/// runs inline and only queues).
struct Events(Arc<Shared>);

impl EventHandler for Events {
    fn handle_event(&self, event: Arc<Event>) {
        let shared = &self.0;
        let now = Utc::now();
        let until = |timeout: Duration| now + chrono::Duration::from_std(timeout).unwrap_or_default();
        if mapping::is_answer(&event) {
            shared.answered.store(true, Ordering::Release);
        }
        match &*event {
            Event::PairingQrCode(qr) => {
                shared.emit(ConnectorEvent::Qr { code: qr.code.clone(), expires_at: until(qr.timeout) })
            }
            Event::PairingCode(code) => shared.emit(ConnectorEvent::PairingCode {
                code: code.code.clone(),
                expires_at: until(code.timeout),
            }),
            Event::PairSuccess(success) => match mapping::phone_of(&success.id) {
                Some(phone) => shared.emit(ConnectorEvent::Linked {
                    phone,
                    credentials: serde_json::json!({
                        "jid": success.id.to_non_ad().to_string(),
                        "lid": success.lid.to_non_ad().to_string(),
                        "platform": success.platform,
                    }),
                }),
                None => tracing::warn!(jid = %success.id, "linked to an account without a phone number"),
            },
            Event::Connected(_) => match shared.own_phone() {
                Some(phone) => shared.emit(ConnectorEvent::Connected { phone }),
                None => tracing::warn!("connected without a linked phone number"),
            },
            Event::Disconnected(lost) => shared.emit(ConnectorEvent::Disconnected {
                reason: format!("connection_lost: {:?}", lost.reason),
                reconnect: true,
            }),
            Event::LoggedOut(out) => {
                shared.emit(ConnectorEvent::LoggedOut { reason: mapping::logged_out_reason(out.reason) })
            }
            Event::StreamReplaced(_) => shared.emit(ConnectorEvent::Disconnected {
                reason: mapping::STREAM_REPLACED.into(),
                reconnect: false,
            }),
            Event::TemporaryBan(ban) => shared.emit(ConnectorEvent::Disconnected {
                reason: mapping::temporary_ban_reason(&ban.code, ban.expire),
                reconnect: false,
            }),
            Event::ClientOutdated(_) => {
                shared.emit(ConnectorEvent::Failed { reason: mapping::CLIENT_OUTDATED.into() })
            }
            Event::ConnectFailure(failure) => {
                let (reason, reconnect) =
                    mapping::connect_failure(failure.reason, failure.message.as_deref());
                shared.emit(ConnectorEvent::Disconnected { reason, reconnect })
            }
            Event::PairingQrCodesExhausted(_) => shared
                .emit(ConnectorEvent::Disconnected { reason: mapping::QR_EXPIRED.into(), reconnect: false }),
            Event::ServerAck(ack) => {
                if let Some(waiter) = shared.acks.lock().remove(&ack.id) {
                    let _ = waiter.send(ack.error.clone());
                }
            }
            Event::Receipt(receipt) => {
                if let Some(kind) = mapping::receipt(&receipt.r#type) {
                    for id in &receipt.message_ids {
                        shared.emit(ConnectorEvent::Receipt {
                            wa_id: id.clone(),
                            receipt: kind,
                            at: receipt.timestamp,
                        });
                    }
                }
            }
            Event::ContactUpdate(update) => {
                let contact = mapping::contact_update(&update.jid, &update.action, now);
                shared.emit(ConnectorEvent::Learned {
                    contacts: contact.into_iter().collect(),
                    chats: Vec::new(),
                });
            }
            Event::PushNameUpdate(update) => {
                let contact = mapping::push_name(&update.jid, &update.new_push_name, now);
                shared.emit(ConnectorEvent::Learned {
                    contacts: contact.into_iter().collect(),
                    chats: Vec::new(),
                });
            }
            Event::HistorySync(sync) => {
                if let Some(history) = sync.get() {
                    let (contacts, chats) = mapping::history(history, now);
                    shared.emit(ConnectorEvent::Learned { contacts, chats });
                }
            }
            _ => {}
        }
    }
}

/// Hands inbound messages to the engine and lets WhatsApp have its ack only once they are
/// stored: an error here leaves the batch unacknowledged, and WhatsApp delivers it again.
struct StoreFirst(Arc<Shared>);

#[async_trait]
impl InboundDurabilityHook for StoreFirst {
    async fn on_messages(
        &self,
        client: Arc<Client>,
        batch: &[whatsapp_rust::types::events::InboundMessage],
    ) -> whatsapp_rust::anyhow::Result<()> {
        let shared = &self.0;
        let mut stored = Vec::with_capacity(batch.len());
        for inbound in batch {
            let Some(message) = receive(shared, &client, inbound).await? else { continue };
            let (ack, acked) = Ack::new();
            shared.emit(ConnectorEvent::Inbound { message: Box::new(message), ack });
            stored.push(acked);
        }
        for acked in stored {
            match tokio::time::timeout(shared.store_timeout, acked).await {
                Ok(Ok(())) => {}
                _ => whatsapp_rust::anyhow::bail!(
                    "session {} did not store an inbound message",
                    shared.session
                ),
            }
        }
        Ok(())
    }
}

/// An inbound message as wagate keeps it, its media downloaded and stored; `None` for what
/// is not kept (our own messages echoed from the phone, protocol messages).
async fn receive(
    shared: &Shared,
    client: &Client,
    inbound: &whatsapp_rust::types::events::InboundMessage,
) -> whatsapp_rust::anyhow::Result<Option<InboundMessage>> {
    let info = &inbound.info;
    if info.source.is_from_me {
        return Ok(None);
    }
    let Some(parts) = mapping::inbound(&inbound.message) else { return Ok(None) };
    // Authors known only by LID are shown by phone number where the client knows it.
    let lid_user = [Some(&info.source.sender), Some(&info.source.chat)]
        .into_iter()
        .flatten()
        .find(|j| j.is_lid())
        .map(|j| j.to_non_ad());
    let mut phone_of_lid: Option<(String, String)> = None;
    if let Some(lid) = lid_user {
        if let Ok(Some(entry)) = client.get_lid_pn_entry(&lid).await {
            phone_of_lid = Some((entry.lid.to_string(), entry.phone_number.to_string()));
        }
    }
    let resolve = |lid: &str| phone_of_lid.as_ref().filter(|(l, _)| l == lid).map(|(_, p)| p.clone());
    let Some(parties) = mapping::parties(info, resolve) else {
        tracing::warn!(chat = %info.source.chat, "inbound message from an address wagate cannot show");
        return Ok(None);
    };
    let content = match parts.body {
        Inbound::Content(content) => content,
        Inbound::Media { kind, caption, filename, voice } => {
            let base = whatsapp_rust::wacore::proto_helpers::MessageExt::get_base_message(&*inbound.message);
            let Some(source) = mapping::downloadable(base, kind) else { return Ok(None) };
            let bytes = client.download(source).await?;
            let media = shared
                .media
                .store(&shared.session, bytes, filename.clone())
                .await
                .map_err(|e| whatsapp_rust::anyhow::anyhow!("cannot store inbound media: {e}"))?;
            MessageContent::media(kind, MediaContent::of(&media, caption, filename, voice))
        }
    };
    Ok(Some(InboundMessage {
        wa_id: info.id.clone(),
        chat: parties.chat,
        from: parties.from,
        content,
        at: info.timestamp,
        reply_to: parts.reply_to,
        mentions: parts.mentions,
        from_lid: parties.from_lid,
        push_name: Some(info.push_name.clone()).filter(|n| !n.is_empty()),
    }))
}

pub struct WebConnection {
    client: Arc<Client>,
    handle: tokio::sync::Mutex<Option<BotHandle>>,
    shared: Arc<Shared>,
    ack_timeout: Duration,
    watchdog: tokio::task::AbortHandle,
}

impl WebConnection {
    /// Sends (`sent`) with WhatsApp id `id` and waits for the server's ack of it.
    async fn acknowledged(
        &self,
        id: String,
        sent: impl std::future::Future<Output = Result<(), whatsapp_rust::send::SendError>>,
    ) -> Result<String, SendError> {
        let (acked, ack) = oneshot::channel();
        self.shared.acks.lock().insert(id.clone(), acked);
        if let Err(e) = sent.await {
            self.shared.acks.lock().remove(&id);
            return Err(mapping::send_error(&e));
        }
        match tokio::time::timeout(self.ack_timeout, ack).await {
            Ok(Ok(None)) => Ok(id),
            Ok(Ok(Some(code))) => Err(mapping::nack(&code)),
            // No word from the server: trying again sends the same id, which WhatsApp
            // recognises, so a message that did arrive is not shown twice.
            _ => {
                self.shared.acks.lock().remove(&id);
                Err(SendError::Retryable("WhatsApp did not acknowledge the message in time".into()))
            }
        }
    }

    async fn stop(&self) {
        self.watchdog.abort();
        if let Some(handle) = self.handle.lock().await.take() {
            handle.shutdown().await;
        }
    }

    /// The protobuf of an outbound message, its media uploaded.
    async fn build(&self, message: &OutboundMessage) -> Result<wa::Message, SendError> {
        if let Some((key, emoji)) = mapping::reaction_key(message) {
            return Ok(whatsapp_rust::wacore::proto_helpers::build_reaction_message(
                key,
                emoji,
                Utc::now().timestamp_millis(),
            ));
        }
        if let Some((kind, content)) = message.content.media_part() {
            let bytes = self.shared.media.load(&content.id).await.map_err(|e| SendError::Permanent {
                code: "media_unavailable".into(),
                message: format!("the media file cannot be read: {e}"),
            })?;
            let upload = self
                .client
                .upload(bytes, mapping::media_type(kind), UploadOptions::default())
                .await
                .map_err(|e| SendError::Retryable(format!("media upload failed: {e}")))?;
            return Ok(mapping::media_message(kind, content, upload.into(), mapping::context(message, None)));
        }
        mapping::outbound(message).ok_or_else(|| SendError::Permanent {
            code: "unsupported".into(),
            message: "cannot send this kind".into(),
        })
    }
}

#[async_trait]
impl Connection for WebConnection {
    async fn send(&self, message: &OutboundMessage) -> Result<String, SendError> {
        let to: whatsapp_rust::Jid = message.to.to_string().parse().map_err(|_| SendError::Permanent {
            code: "invalid_recipient".into(),
            message: message.to.to_string(),
        })?;
        let id = mapping::wa_message_id(&message.id);
        match mapping::changed(message) {
            Some(Change::Edit { wa_id, body }) => {
                let text = wa::Message { conversation: Some(body), ..Default::default() };
                let options = EditOptions::default().with_stanza_id(id.clone());
                let sent = self.client.edit_message_with_options(to, wa_id, text, options);
                self.acknowledged(id, async { sent.await.map(drop) }).await
            }
            // The client gives a revoke an id of its own, so it is `sent` once written.
            Some(Change::Revoke { wa_id }) => {
                self.client
                    .revoke_message(to, wa_id, RevokeType::Sender)
                    .await
                    .map_err(|e| mapping::send_error(&e))?;
                Ok(id)
            }
            None => {
                let built = self.build(message).await?;
                let options = SendOptions::default().with_message_id(id.clone());
                let sent = self.client.send_message_with_options(to, built, options);
                self.acknowledged(id, async { sent.await.map(drop) }).await
            }
        }
    }

    async fn typing(&self, to: &Jid) {
        if let Ok(jid) = to.to_string().parse::<whatsapp_rust::Jid>() {
            if let Err(e) = self.client.chatstate().send_composing(&jid).await {
                tracing::debug!(error = %e, "could not show typing");
            }
        }
    }

    async fn mark_read(&self, chat: &Jid, messages: &[ReadMessage]) -> Result<(), SendError> {
        let wa_jid = |jid: &Jid| {
            jid.to_string().parse::<whatsapp_rust::Jid>().map_err(|_| SendError::Permanent {
                code: "invalid_recipient".into(),
                message: jid.to_string(),
            })
        };
        let chat = wa_jid(chat)?;
        // One receipt per author: WhatsApp's read receipt names one sender (in a group).
        let mut by_author: Vec<(Option<whatsapp_rust::Jid>, Vec<&str>)> = Vec::new();
        for message in messages {
            let author = message.author.as_ref().map(wa_jid).transpose()?;
            match by_author.iter_mut().find(|(known, _)| *known == author) {
                Some((_, ids)) => ids.push(&message.wa_id),
                None => by_author.push((author, vec![&message.wa_id])),
            }
        }
        for (author, ids) in by_author {
            self.client
                .mark_as_read(&chat, author.as_ref(), &ids)
                .await
                .map_err(|e| SendError::Retryable(format!("WhatsApp did not take the read receipt: {e}")))?;
        }
        Ok(())
    }

    async fn check_numbers(&self, phones: &[PhoneNumber]) -> Result<Vec<NumberCheck>, SendError> {
        let jids: Vec<whatsapp_rust::Jid> =
            phones.iter().map(|p| whatsapp_rust::Jid::pn(p.as_str())).collect();
        let found = self
            .client
            .contacts()
            .is_on_whatsapp(&jids)
            .await
            .map_err(|e| SendError::Retryable(format!("WhatsApp did not answer: {e}")))?;
        Ok(phones
            .iter()
            .map(|phone| {
                let hit = found.iter().find(|r| {
                    r.jid.user == phone.as_str()
                        || r.pn_jid.as_ref().is_some_and(|j| j.user == phone.as_str())
                });
                NumberCheck {
                    phone: phone.clone(),
                    on_whatsapp: hit.is_some_and(|r| r.is_registered),
                    jid: hit.filter(|r| r.is_registered).map(|_| phone.to_jid()),
                    lid: hit.and_then(|r| r.lid.as_ref()).and_then(|l| Jid::parse(&l.to_string()).ok()),
                }
            })
            .collect())
    }

    async fn disconnect(&self) {
        self.stop().await;
    }

    async fn logout(&self) {
        self.client.logout().await;
        self.stop().await;
    }
}
