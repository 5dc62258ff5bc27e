//! The fake server: shared state, the connections that are online, and the
//! HTTP listener that carries both the WebSocket endpoint and the control API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State as AxumState;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;
use tokio::sync::mpsc;
use wacore_binary::Node;

use crate::accounts::{Registration, Registry};
use crate::contacts::Contact;
use crate::media::Blobs;
use crate::noise::ServerKey;
use crate::pair_code::{AwaitingFinish, CodeRequest};
use crate::stanza;

/// What a test or the binary can tune.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the server's static Noise key: keep it across restarts so
    /// clients can resume with IK.
    pub seed: String,
    /// How long a virtual contact holds back its delivery receipt.
    pub contact_delivery_delay: Duration,
    /// How long after delivery a virtual contact reads a message; `None`
    /// leaves messages unread.
    pub contact_read_delay: Option<Duration>,
    /// How many QR references a new companion gets to show (WhatsApp gives six: the client
    /// shows the first for 60 s and each next one for 20 s, then gives up).
    pub qr_refs: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: "fake-whatsapp".into(),
            contact_delivery_delay: Duration::ZERO,
            contact_read_delay: Some(Duration::from_millis(200)),
            qr_refs: 6,
        }
    }
}

pub(crate) enum Out {
    Node(Box<Node>),
    Close,
}

/// The way to one connection's writer task.
#[derive(Clone)]
pub(crate) struct Outbox {
    pub id: u64,
    tx: mpsc::UnboundedSender<Out>,
}

impl Outbox {
    pub(crate) fn new(id: u64) -> (Self, mpsc::UnboundedReceiver<Out>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { id, tx }, rx)
    }

    pub(crate) fn send(&self, node: Node) {
        // A closed writer means the socket is gone; the reader cleans up.
        let _ = self.tx.send(Out::Node(Box::new(node)));
    }

    pub(crate) fn close(&self) {
        let _ = self.tx.send(Out::Close);
    }
}

/// A logged-in device connection.
pub(crate) struct Online {
    pub outbox: Outbox,
    /// Passive until the client sends `<active/>`: nothing is pushed before.
    pub active: bool,
}

/// A companion showing QR codes, waiting for a phone to scan one.
pub(crate) struct Pending {
    pub outbox: Outbox,
    pub registration: Registration,
}

/// A `pair-success` sent, waiting for the companion's `pair-device-sign`.
pub(crate) struct AwaitingSign {
    pub conn: u64,
    pub phone: String,
    pub device: u16,
    pub key_index: u32,
    pub registration: Registration,
}

#[derive(Clone, Debug, Serialize)]
pub struct Unhandled {
    pub from: String,
    pub stanza: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub registry: Registry,
    pub online: HashMap<(String, u16), Online>,
    /// QR ref → the pairing connection's id.
    pub refs: HashMap<String, u64>,
    pub pending: HashMap<u64, Pending>,
    /// pair-success iq id → what to register once the companion signs.
    pub awaiting_sign: HashMap<String, AwaitingSign>,
    pub unhandled: Vec<Unhandled>,
    /// Phone number → the companion waiting for its pairing code to be typed.
    pub code_requests: HashMap<String, CodeRequest>,
    /// Pairing ref → the phone's half of a pairing-code exchange.
    pub awaiting_finish: HashMap<String, AwaitingFinish>,
}

impl State {
    pub(crate) fn record_unhandled(&mut self, from: &str, node: &Node) {
        let stanza = stanza::render(node);
        tracing::info!(%from, %stanza, "unhandled stanza");
        self.unhandled.push(Unhandled { from: from.to_owned(), stanza });
    }
}

pub(crate) struct Inner {
    pub key: ServerKey,
    pub config: Config,
    state: Mutex<State>,
    next_conn: AtomicU64,
    media_host: OnceLock<String>,
    ws_url: OnceLock<String>,
    contacts: Mutex<HashMap<String, Arc<Contact>>>,
    blobs: Arc<Blobs>,
}

/// A handle on the running fake; cheap to clone.
#[derive(Clone)]
pub struct FakeServer {
    pub(crate) inner: Arc<Inner>,
}

impl FakeServer {
    pub fn new(config: Config) -> Result<Self> {
        let key = ServerKey::from_seed(&config.seed)?;
        Ok(Self {
            inner: Arc::new(Inner {
                key,
                config,
                state: Mutex::new(State::default()),
                next_conn: AtomicU64::new(1),
                media_host: OnceLock::new(),
                ws_url: OnceLock::new(),
                contacts: Mutex::new(HashMap::new()),
                blobs: Arc::new(Blobs::default()),
            }),
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock()
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The server's static Noise public key (what IK clients cache).
    pub fn static_public_key(&self) -> [u8; 32] {
        self.inner.key.public()
    }

    /// `host:port` of the HTTPS media endpoint clients upload to (self-signed).
    pub fn media_host(&self) -> String {
        self.inner.media_host.get().cloned().unwrap_or_else(|| "media.invalid".into())
    }

    /// The WebSocket URL once the server listens.
    pub fn ws_url(&self) -> Option<String> {
        self.inner.ws_url.get().cloned()
    }

    pub(crate) fn blobs(&self) -> Arc<Blobs> {
        Arc::clone(&self.inner.blobs)
    }

    pub(crate) fn contact(&self, phone: &str) -> Option<Arc<Contact>> {
        self.inner.contacts.lock().get(phone).cloned()
    }

    pub(crate) fn add_contact(&self, phone: &str, contact: Arc<Contact>) {
        self.inner.contacts.lock().insert(phone.to_owned(), contact);
    }

    /// Stanzas the fake answered with a placeholder or ignored.
    pub fn unhandled(&self) -> Vec<Unhandled> {
        self.state().unhandled.clone()
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/ws/chat", get(ws_upgrade))
            .merge(crate::control::routes())
            .with_state(self.clone())
    }

    /// Listens on `addr` (port 0 picks a free one) and serves until the
    /// returned handle is dropped.
    pub async fn start(config: Config, addr: SocketAddr) -> Result<Running> {
        let server = Self::new(config)?;
        let listener = tokio::net::TcpListener::bind(addr).await.context("bind the listen address")?;
        let local = listener.local_addr()?;
        let ws_url = format!("ws://{local}/ws/chat");
        let _ = server.inner.ws_url.set(ws_url.clone());
        let (media_host, media_task) = crate::media::start(&server, local).await?;
        let _ = server.inner.media_host.set(media_host);
        let app = server.router();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake-whatsapp listener stopped");
            }
        });
        Ok(Running {
            server,
            ws_url,
            control_url: format!("http://{local}/control"),
            addr: local,
            task,
            media_task,
        })
    }
}

async fn ws_upgrade(AxumState(server): AxumState<FakeServer>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(64 << 20).on_upgrade(move |socket| crate::conn::serve(server, socket))
}

/// A listening fake; stops serving when dropped.
pub struct Running {
    pub server: FakeServer,
    pub ws_url: String,
    pub control_url: String,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    media_task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        self.media_task.abort();
    }
}
