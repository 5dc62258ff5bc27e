//! `sim`: a simulated WhatsApp network inside the process, for trying wagate without a phone,
//! for tests and for benchmarks.
//!
//! Sessions link by "scanning" their QR code (or typing a pairing code) through the network's
//! API. Linked sim sessions message each other; any other number is a virtual contact whose
//! phone confirms delivery and reads after configurable delays. Numbers ending in `0000` are
//! not on WhatsApp. Faults drop connections and delay or fail sends.
//!
//! The network lives in memory: receipts and messages waiting for an offline sim session are
//! lost when the process stops, like a phone that was switched off for too long.

mod network;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wagate_core::{ConnectorKind, MessageContent, PhoneNumber, SessionId};

pub use network::{Faults, Injected, SimElsewhere, SimError, SimNetwork};

use crate::{
    ConnectError, Connection, Connector, EventSink, NumberCheck, OutboundMessage, ReadMessage, SendError,
    SessionSpec,
};

/// Timing of the simulated network.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long each QR code is shown before the next one replaces it.
    pub qr_interval: Duration,
    /// How many QR codes are shown before linking gives up.
    pub qr_max_codes: u32,
    /// How long a virtual contact's phone takes to confirm delivery.
    pub delivery_delay: Duration,
    /// How long after delivery a recipient reads a message.
    pub read_delay: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            qr_interval: Duration::from_secs(20),
            qr_max_codes: 6,
            delivery_delay: Duration::from_millis(200),
            read_delay: Duration::from_secs(2),
        }
    }
}

/// The connector for sim sessions.
pub struct SimConnector {
    network: Arc<SimNetwork>,
}

impl SimConnector {
    pub fn new(network: Arc<SimNetwork>) -> Self {
        Self { network }
    }
}

/// The device credentials a linked sim session keeps: just its phone number.
#[derive(serde::Serialize, serde::Deserialize)]
struct SimCredentials {
    phone: PhoneNumber,
}

#[async_trait]
impl Connector for SimConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sim
    }

    async fn connect(
        &self,
        spec: SessionSpec,
        events: EventSink,
    ) -> Result<Box<dyn Connection>, ConnectError> {
        let linked = spec
            .credentials
            .map(|c| serde_json::from_value::<SimCredentials>(c).map(|c| c.phone))
            .transpose()
            .map_err(|e| ConnectError::Permanent(format!("sim credentials are unreadable: {e}")))?;
        let generation = self.network.open(&spec.id, linked, spec.pairing_phone, events)?;
        Ok(Box::new(SimConnection { network: Arc::clone(&self.network), session: spec.id, generation }))
    }

    async fn forget(&self, session: &SessionId) {
        self.network.forget(session);
    }
}

struct SimConnection {
    network: Arc<SimNetwork>,
    session: SessionId,
    generation: u64,
}

#[async_trait]
impl Connection for SimConnection {
    async fn send(&self, message: &OutboundMessage) -> Result<String, SendError> {
        if let Some(delay) = self.network.send_delay(&self.session) {
            tokio::time::sleep(delay).await;
        }
        self.network.send(&self.session, self.generation, message)
    }

    async fn mark_read(&self, _chat: &wagate_core::Jid, _messages: &[ReadMessage]) -> Result<(), SendError> {
        // The simulated phones read every message by themselves (`read_delay`): there is no
        // receipt left to send.
        Ok(())
    }

    async fn check_numbers(&self, phones: &[PhoneNumber]) -> Result<Vec<NumberCheck>, SendError> {
        Ok(phones
            .iter()
            .map(|phone| NumberCheck {
                phone: phone.clone(),
                on_whatsapp: on_whatsapp(phone),
                jid: on_whatsapp(phone).then(|| phone.to_jid()),
                lid: None,
            })
            .collect())
    }

    async fn disconnect(&self) {
        self.network.close(&self.session, self.generation, false);
    }

    async fn logout(&self) {
        self.network.close(&self.session, self.generation, true);
    }
}

/// On the sim network every number has WhatsApp except those ending in 0000.
pub(crate) fn on_whatsapp(phone: &PhoneNumber) -> bool {
    !phone.as_str().ends_with("0000")
}

/// WhatsApp's id for a message sent through the sim: derived from wagate's id, so a send
/// repeated after a crash is recognised by the recipient as the same message.
fn wa_id_for(message: &OutboundMessage) -> String {
    let tail = message.id.as_str().trim_start_matches("msg_");
    format!("3EB0{tail}")
}

/// What `POST /v1/sim/inbound` asks the network to deliver.
#[derive(Debug, Clone)]
pub struct InboundRequest {
    pub session_id: SessionId,
    pub from: PhoneNumber,
    pub content: MessageContent,
    /// WhatsApp's id; a repeat with the same id is the same message.
    pub wa_id: Option<String>,
}
