//! A real whatsapp-rust client wired to a fake server: in-memory store,
//! every event kept in order. Tests drive it, and virtual contacts are made
//! of it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use parking_lot::Mutex;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::http::UreqHttpClient;
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::store::Backend;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::{Event, EventHandler};
use whatsapp_rust::upload::UploadResponse;
use whatsapp_rust::wacore::store::InMemoryBackend;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, InboundDurabilityHook};

use crate::server::FakeServer;

/// The client version offline clients must be pinned to: without one the
/// client fetches the current version from WhatsApp's web site first.
pub const CLIENT_VERSION: (u32, u32, u32) = (2, 3000, 1_000_000_000);

/// Every event the client emitted, in dispatch order.
#[derive(Default)]
pub struct EventLog {
    events: Mutex<Vec<Arc<Event>>>,
}

impl EventLog {
    pub fn all(&self) -> Vec<Arc<Event>> {
        self.events.lock().clone()
    }
}

impl EventHandler for EventLog {
    fn handle_event(&self, event: Arc<Event>) {
        self.events.lock().push(event);
    }
}

/// How to build a companion.
pub struct Options {
    pub push_name: String,
    /// Reuse a store (a restarted client); a fresh one otherwise.
    pub backend: Option<Arc<InMemoryBackend>>,
    pub durability_hook: Option<Arc<dyn InboundDurabilityHook>>,
    /// Link by pairing code for this phone number instead of by QR code.
    pub pair_code_phone: Option<String>,
}

impl Options {
    pub fn named(push_name: &str) -> Self {
        Self { push_name: push_name.to_owned(), backend: None, durability_hook: None, pair_code_phone: None }
    }
}

struct LogHandler(Arc<EventLog>);

impl EventHandler for LogHandler {
    fn handle_event(&self, event: Arc<Event>) {
        self.0.handle_event(event);
    }
}

struct ArcHook(Arc<dyn InboundDurabilityHook>);

#[whatsapp_rust::async_trait]
impl InboundDurabilityHook for ArcHook {
    async fn on_messages(
        &self,
        client: Arc<Client>,
        batch: &[whatsapp_rust::types::events::InboundMessage],
    ) -> whatsapp_rust::anyhow::Result<()> {
        self.0.on_messages(client, batch).await
    }
}

pub struct Companion {
    pub client: Arc<Client>,
    pub backend: Arc<InMemoryBackend>,
    pub events: Arc<EventLog>,
    handle: Mutex<Option<BotHandle>>,
}

impl Companion {
    /// Starts a client against `ws_url`; an unlinked one will show QR codes.
    pub async fn start(ws_url: &str, options: Options) -> Result<Self> {
        let backend = options.backend.unwrap_or_else(|| Arc::new(InMemoryBackend::new()));
        let events = Arc::new(EventLog::default());
        let mut builder = Bot::builder()
            .with_backend_arc(Arc::clone(&backend) as Arc<dyn Backend>)
            .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(ws_url))
            .with_http_client(UreqHttpClient::new())
            .with_version(CLIENT_VERSION)
            .with_push_name(options.push_name)
            .skip_history_sync()
            .with_event_handler(LogHandler(Arc::clone(&events)));
        if let Some(phone) = options.pair_code_phone {
            builder = builder.with_pair_code(PairCodeOptions { phone_number: phone, ..Default::default() });
        }
        if let Some(hook) = options.durability_hook {
            builder = builder.with_inbound_durability_hook(ArcHook(hook));
        }
        let bot = builder.build().await.map_err(|e| anyhow!("cannot build the client: {e}"))?;
        let client = bot.client();
        // A client that is not "active" answers with inactive receipts instead
        // of delivered ones; a companion in a test behaves like an open app.
        client.set_force_active_delivery_receipts(true);
        let handle = bot.spawn();
        Ok(Self { client, backend, events, handle: Mutex::new(Some(handle)) })
    }

    /// Starts a fresh client and links it to `phone` by scanning its first QR
    /// code, then waits until it is connected.
    pub async fn link(server: &FakeServer, ws_url: &str, phone: &str, options: Options) -> Result<Self> {
        let companion = Self::start(ws_url, options).await?;
        let qr = companion
            .wait_for(Duration::from_secs(20), |e| match e {
                Event::PairingQrCode(q) => Some(q.code.clone()),
                _ => None,
            })
            .await?;
        crate::pairing::scan(server, &qr, phone)?;
        companion
            .wait_for(Duration::from_secs(40), |e| matches!(e, Event::Connected(_)).then_some(()))
            .await?;
        Ok(companion)
    }

    pub fn events(&self) -> Vec<Arc<Event>> {
        self.events.all()
    }

    /// The first event `f` picks, waiting up to `timeout` for one.
    pub async fn wait_for<T>(&self, timeout: Duration, f: impl Fn(&Event) -> Option<T>) -> Result<T> {
        self.wait_for_nth(timeout, 1, f).await
    }

    /// The `n`th event `f` picks (counting from 1).
    pub async fn wait_for_nth<T>(
        &self,
        timeout: Duration,
        n: usize,
        f: impl Fn(&Event) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self.events.all().iter().filter_map(|e| f(e)).nth(n - 1) {
                return Ok(found);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("no such event within {timeout:?}; saw: {}", self.event_names().join(", "));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.all().iter().filter(|e| f(e)).count()
    }

    /// Event kinds seen so far, for failure messages.
    pub fn event_names(&self) -> Vec<String> {
        self.events
            .all()
            .iter()
            .map(|e| format!("{e:?}").split(['(', ' ', '{']).next().unwrap_or_default().to_owned())
            .collect()
    }

    /// Disconnects and stops the client; its store stays in `backend`.
    pub async fn stop(&self) {
        let handle = self.handle.lock().take();
        self.client.disconnect().await;
        if let Some(handle) = handle {
            let _ = tokio::time::timeout(Duration::from_secs(5), handle.shutdown()).await;
        }
    }
}

/// An image message for what `Client::upload` stored.
pub fn image_message(up: UploadResponse, mimetype: &str, caption: Option<String>) -> wa::Message {
    wa::Message {
        image_message: wa::message::ImageMessage {
            url: Some(up.url),
            direct_path: Some(up.direct_path),
            media_key: Some(up.media_key.to_vec()),
            file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
            file_sha256: Some(up.file_sha256.to_vec()),
            file_length: Some(up.file_length),
            media_key_timestamp: Some(up.media_key_timestamp),
            mimetype: Some(mimetype.to_owned()),
            caption,
            ..Default::default()
        }
        .into(),
        ..Default::default()
    }
}

/// A document message for what `Client::upload` stored.
pub fn document_message(up: UploadResponse, mimetype: &str, file_name: &str) -> wa::Message {
    wa::Message {
        document_message: wa::message::DocumentMessage {
            url: Some(up.url),
            direct_path: Some(up.direct_path),
            media_key: Some(up.media_key.to_vec()),
            file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
            file_sha256: Some(up.file_sha256.to_vec()),
            file_length: Some(up.file_length),
            media_key_timestamp: Some(up.media_key_timestamp),
            mimetype: Some(mimetype.to_owned()),
            file_name: Some(file_name.to_owned()),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    }
}
