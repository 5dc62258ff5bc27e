//! The state of the simulated network: who is linked to which phone, who is online, and
//! what waits for sessions that are offline.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parking_lot::{Mutex, MutexGuard};
use rand::Rng;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use wagate_core::{Jid, MessageContent, PhoneNumber, SessionId};

use super::{wa_id_for, InboundRequest, SimConfig};
use crate::{
    Ack, ConnectError, ConnectorEvent, EventSink, InboundMessage, OutboundMessage, Receipt, SendError,
};

/// Why a request to the simulated network was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("no session is showing this code (it may have expired)")]
    UnknownCode,
    #[error("this code is a pairing code for {0}, not for this phone")]
    WrongPhone(String),
    #[error("phone {phone} is already linked to session {session}")]
    PhoneInUse { phone: String, session: String },
    #[error("session is not linked to a phone")]
    NotLinked,
    #[error("session is not connected")]
    NotConnected,
    #[error("the session did not store the message in time")]
    Timeout,
}

/// Send faults for one session.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The next this many sends fail with a retryable error.
    pub fail_sends: u32,
    /// Every send waits this long first.
    pub send_delay: Option<Duration>,
}

/// What became of an injected inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub wa_id: String,
    /// True when the session stored it; false when it waits for the session to come online.
    pub stored: bool,
}

enum Mail {
    Inbound(Box<InboundMessage>, Ack),
    Receipt { wa_id: String, receipt: Receipt },
}

enum LinkKind {
    Qr,
    Pairing(PhoneNumber),
}

struct Linking {
    sink: EventSink,
    kind: LinkKind,
    code: Option<String>,
    timer: Option<AbortHandle>,
}

#[derive(Default)]
struct Device {
    generation: u64,
    phone: Option<PhoneNumber>,
    live: Option<EventSink>,
    linking: Option<Linking>,
    mailbox: VecDeque<Mail>,
    faults: Faults,
}

impl Device {
    fn stop_linking(&mut self, codes: &mut HashMap<String, SessionId>) {
        if let Some(linking) = self.linking.take() {
            if let Some(code) = linking.code {
                codes.remove(&code);
            }
            if let Some(timer) = linking.timer {
                timer.abort();
            }
        }
    }
}

#[derive(Default)]
struct State {
    devices: HashMap<SessionId, Device>,
    phones: HashMap<PhoneNumber, SessionId>,
    /// The QR or pairing code each linking session shows.
    codes: HashMap<String, SessionId>,
    next_generation: u64,
}

impl State {
    /// Hands mail to a session: at once when it is online, else when it next connects.
    fn post(&mut self, session: &SessionId, mail: Mail) {
        let device = self.devices.entry(session.clone()).or_default();
        device.mailbox.push_back(mail);
        flush(device);
    }

    /// A one-to-one message from `from` reaches `session`; the receiver resolves once the
    /// session stored it.
    fn deliver(
        &mut self,
        session: &SessionId,
        from: &PhoneNumber,
        wa_id: String,
        content: MessageContent,
        (reply_to, mentions): (Option<String>, Vec<Jid>),
    ) -> oneshot::Receiver<()> {
        let (ack, acked) = Ack::new();
        let inbound = InboundMessage {
            wa_id,
            chat: from.to_jid(),
            from: from.to_jid(),
            content,
            at: Utc::now(),
            reply_to,
            mentions,
            from_lid: None,
            push_name: None,
        };
        self.post(session, Mail::Inbound(Box::new(inbound), ack));
        acked
    }

    fn go_live(&mut self, session: &SessionId, phone: PhoneNumber, sink: EventSink) {
        self.phones.insert(phone.clone(), session.clone());
        let device = self.devices.entry(session.clone()).or_default();
        device.phone = Some(phone.clone());
        let _ = sink.send(ConnectorEvent::Connected { phone });
        device.live = Some(sink);
        flush(device);
    }
}

fn flush(device: &mut Device) {
    let Some(sink) = &device.live else { return };
    while let Some(mail) = device.mailbox.pop_front() {
        let event = match mail {
            Mail::Inbound(message, ack) => ConnectorEvent::Inbound { message, ack },
            Mail::Receipt { wa_id, receipt } => ConnectorEvent::Receipt { wa_id, receipt, at: Utc::now() },
        };
        if let Err(returned) = sink.send(event) {
            // The session's task is gone: keep the mail for its next connection.
            let mail = match returned.0 {
                ConnectorEvent::Inbound { message, ack } => Mail::Inbound(message, ack),
                ConnectorEvent::Receipt { wa_id, receipt, .. } => Mail::Receipt { wa_id, receipt },
                _ => unreachable!("only mail is flushed"),
            };
            device.mailbox.push_front(mail);
            device.live = None;
            return;
        }
    }
}

fn random_code(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

/// The simulated WhatsApp network shared by all sim sessions of this process.
pub struct SimNetwork {
    config: SimConfig,
    state: Mutex<State>,
    /// Sim sessions on other nodes, when several share a database.
    elsewhere: std::sync::OnceLock<Arc<dyn SimElsewhere>>,
}

/// Sim sessions that other nodes run: where this node's network hands a message for a
/// number not connected here.
#[async_trait::async_trait]
pub trait SimElsewhere: Send + Sync {
    /// Stores `message` for the sim session linked to `to`, if there is one; true once stored.
    async fn deliver(&self, to: &PhoneNumber, message: InboundMessage) -> bool;
}

impl SimNetwork {
    pub fn new(config: SimConfig) -> Arc<Self> {
        Arc::new(Self { config, state: Mutex::new(State::default()), elsewhere: std::sync::OnceLock::new() })
    }

    /// Connects this network to the sim sessions of other nodes.
    pub fn reach_elsewhere(&self, elsewhere: Arc<dyn SimElsewhere>) {
        let _ = self.elsewhere.set(elsewhere);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Opens a connection: online at once for a linked session, else showing QR or pairing codes.
    pub(super) fn open(
        self: &Arc<Self>,
        session: &SessionId,
        linked: Option<PhoneNumber>,
        pairing_phone: Option<PhoneNumber>,
        sink: EventSink,
    ) -> Result<u64, ConnectError> {
        let mut state = self.state();
        state.next_generation += 1;
        let generation = state.next_generation;
        let State { devices, codes, phones, .. } = &mut *state;
        let device = devices.entry(session.clone()).or_default();
        device.stop_linking(codes);
        device.live = None;
        device.generation = generation;
        if let Some(phone) = linked {
            if let Some(other) = phones.get(&phone).filter(|s| *s != session) {
                return Err(ConnectError::Permanent(format!("phone {phone} is linked to session {other}")));
            }
            state.go_live(session, phone, sink);
            return Ok(generation);
        }
        let kind = match pairing_phone {
            Some(phone) => {
                if let Some(other) = phones.get(&phone).filter(|s| *s != session) {
                    return Err(ConnectError::Permanent(format!(
                        "phone {phone} is linked to session {other}"
                    )));
                }
                LinkKind::Pairing(phone)
            }
            None => LinkKind::Qr,
        };
        device.linking = Some(Linking { sink, kind, code: None, timer: None });
        let network = Arc::clone(self);
        let session = session.clone();
        let timer = tokio::spawn(async move { network.show_codes(session, generation).await });
        if let Some(linking) = device.linking.as_mut() {
            linking.timer = Some(timer.abort_handle());
        }
        Ok(generation)
    }

    /// Shows rotating QR codes (or one pairing code) until linked, closed or timed out.
    async fn show_codes(self: Arc<Self>, session: SessionId, generation: u64) {
        let interval = self.config.qr_interval;
        for _ in 0..self.config.qr_max_codes.max(1) {
            let pairing = {
                let mut state = self.state();
                let State { devices, codes, .. } = &mut *state;
                let Some(linking) = devices
                    .get_mut(&session)
                    .filter(|d| d.generation == generation)
                    .and_then(|d| d.linking.as_mut())
                else {
                    return;
                };
                let expires_at = Utc::now() + interval * self.config.qr_max_codes.max(1);
                let (code, event) = match &linking.kind {
                    LinkKind::Qr => {
                        let code = format!(
                            "2@{},sim",
                            random_code(
                                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                                32
                            )
                        );
                        let event =
                            ConnectorEvent::Qr { code: code.clone(), expires_at: Utc::now() + interval };
                        (code, event)
                    }
                    LinkKind::Pairing(_) => {
                        let code = random_code(b"123456789ABCDEFGHJKLMNPQRSTVWXYZ", 8);
                        (code.clone(), ConnectorEvent::PairingCode { code, expires_at })
                    }
                };
                if let Some(old) = linking.code.replace(code.clone()) {
                    codes.remove(&old);
                }
                codes.insert(code, session.clone());
                let _ = linking.sink.send(event);
                matches!(linking.kind, LinkKind::Pairing(_))
            };
            let wait = if pairing { interval * self.config.qr_max_codes.max(1) } else { interval };
            tokio::time::sleep(wait).await;
            if pairing {
                break;
            }
        }
        let mut state = self.state();
        let State { devices, codes, .. } = &mut *state;
        if let Some(device) = devices.get_mut(&session).filter(|d| d.generation == generation) {
            if let Some(linking) = device.linking.take() {
                if let Some(code) = linking.code {
                    codes.remove(&code);
                }
                let _ = linking.sink.send(ConnectorEvent::Disconnected {
                    reason: "linking timed out: no code was scanned".into(),
                    reconnect: false,
                });
            }
        }
    }

    /// A phone scans a QR code.
    pub fn scan(&self, code: &str, phone: PhoneNumber) -> Result<SessionId, SimError> {
        self.link(code, phone, false)
    }

    /// A phone enters a pairing code.
    pub fn pair(&self, code: &str, phone: PhoneNumber) -> Result<SessionId, SimError> {
        self.link(&code.replace('-', "").to_uppercase(), phone, true)
    }

    fn link(&self, code: &str, phone: PhoneNumber, pairing: bool) -> Result<SessionId, SimError> {
        let mut state = self.state();
        let session = state.codes.get(code).cloned().ok_or(SimError::UnknownCode)?;
        if let Some(other) = state.phones.get(&phone).filter(|s| **s != session) {
            return Err(SimError::PhoneInUse { phone: phone.to_string(), session: other.to_string() });
        }
        let State { devices, codes, .. } = &mut *state;
        let device = devices.get_mut(&session).ok_or(SimError::UnknownCode)?;
        match device.linking.as_ref().map(|l| &l.kind) {
            Some(LinkKind::Qr) if !pairing => {}
            Some(LinkKind::Pairing(expected)) if pairing => {
                if *expected != phone {
                    return Err(SimError::WrongPhone(expected.to_string()));
                }
            }
            _ => return Err(SimError::UnknownCode),
        }
        let sink = device.linking.as_ref().map(|l| l.sink.clone()).ok_or(SimError::UnknownCode)?;
        device.stop_linking(codes);
        let credentials = serde_json::json!({ "phone": phone });
        let _ = sink.send(ConnectorEvent::Linked { phone: phone.clone(), credentials });
        state.go_live(&session, phone, sink);
        Ok(session)
    }

    /// Closes a session's connection; `logout` also unlinks its phone.
    pub(super) fn close(&self, session: &SessionId, generation: u64, logout: bool) {
        let mut state = self.state();
        let State { devices, codes, phones, .. } = &mut *state;
        let Some(device) = devices.get_mut(session).filter(|d| d.generation == generation) else {
            return;
        };
        device.stop_linking(codes);
        device.live = None;
        if logout {
            if let Some(phone) = device.phone.take() {
                phones.remove(&phone);
            }
            device.mailbox.clear();
        }
    }

    /// Unlinks a session that has no connection (logged out or deleted while offline).
    pub(super) fn forget(&self, session: &SessionId) {
        let mut state = self.state();
        let State { devices, codes, phones, .. } = &mut *state;
        if let Some(mut device) = devices.remove(session) {
            device.stop_linking(codes);
            if let Some(phone) = device.phone {
                phones.remove(&phone);
            }
        }
    }

    pub(super) fn send_delay(&self, session: &SessionId) -> Option<Duration> {
        self.state().devices.get(session).and_then(|d| d.faults.send_delay)
    }

    pub(super) fn send(
        self: &Arc<Self>,
        session: &SessionId,
        generation: u64,
        message: &OutboundMessage,
    ) -> Result<String, SendError> {
        let mut state = self.state();
        let device = state
            .devices
            .get_mut(session)
            .filter(|d| d.generation == generation && d.live.is_some())
            .ok_or_else(|| SendError::Retryable("not connected".into()))?;
        if device.faults.fail_sends > 0 {
            device.faults.fail_sends -= 1;
            return Err(SendError::Retryable("simulated send failure".into()));
        }
        let from = device.phone.clone().ok_or_else(|| SendError::Retryable("not linked".into()))?;
        let not_on_whatsapp = |what: &str| SendError::Permanent {
            code: "recipient_not_on_whatsapp".into(),
            message: format!("{what} is not on WhatsApp"),
        };
        let to = message.to.phone().ok_or_else(|| not_on_whatsapp("the group"))?;
        if !super::on_whatsapp(&to) {
            return Err(not_on_whatsapp(to.as_str()));
        }
        let wa_id = wa_id_for(message);
        let target = state.phones.get(&to).cloned();
        let live_here =
            target.as_ref().is_some_and(|t| state.devices.get(t).is_some_and(|d| d.live.is_some()));
        let elsewhere = self.elsewhere.get().cloned();
        // A number linked here goes to its session here, unless it is offline and the session
        // may run on another node now.
        let here = target.filter(|_| live_here || elsewhere.is_none());
        let (delivered_after, ack) = match (here, elsewhere) {
            (Some(target), _) => {
                let extras = (message.reply_to.clone(), message.mentions.clone());
                let acked = state.deliver(&target, &from, wa_id.clone(), message.content.clone(), extras);
                (Duration::ZERO, Some(acked))
            }
            // Not connected here: perhaps a sim session on another node; if not, a virtual contact.
            (None, Some(elsewhere)) => {
                let inbound = InboundMessage {
                    wa_id: wa_id.clone(),
                    chat: from.to_jid(),
                    from: from.to_jid(),
                    content: message.content.clone(),
                    at: Utc::now(),
                    reply_to: message.reply_to.clone(),
                    mentions: message.mentions.clone(),
                    from_lid: None,
                    push_name: None,
                };
                let (stored, acked) = oneshot::channel();
                let delivery_delay = self.config.delivery_delay;
                tokio::spawn(async move {
                    if !elsewhere.deliver(&to, inbound).await {
                        tokio::time::sleep(delivery_delay).await;
                    }
                    let _ = stored.send(());
                });
                (Duration::ZERO, Some(acked))
            }
            (None, None) => (self.config.delivery_delay, None),
        };
        drop(state);
        let network = Arc::clone(self);
        let session = session.clone();
        let receipt_wa_id = wa_id.clone();
        tokio::spawn(async move {
            match ack {
                // A sim session confirms delivery once it has stored the message.
                Some(acked) => {
                    if acked.await.is_err() {
                        return;
                    }
                }
                None => tokio::time::sleep(delivered_after).await,
            }
            network.receipt(&session, &receipt_wa_id, Receipt::Delivered);
            tokio::time::sleep(network.config.read_delay).await;
            network.receipt(&session, &receipt_wa_id, Receipt::Read);
        });
        Ok(wa_id)
    }

    fn receipt(&self, session: &SessionId, wa_id: &str, receipt: Receipt) {
        self.state().post(session, Mail::Receipt { wa_id: wa_id.to_owned(), receipt });
    }

    /// A virtual contact writes to a sim session. Waits until the session stored the message
    /// when it is online; otherwise the message waits for the session's next connection.
    pub async fn inject(&self, request: InboundRequest) -> Result<Injected, SimError> {
        let (acked, wa_id, online) = {
            let mut state = self.state();
            let device = state.devices.get(&request.session_id).ok_or(SimError::NotLinked)?;
            device.phone.as_ref().ok_or(SimError::NotLinked)?;
            let online = device.live.is_some();
            let wa_id =
                request.wa_id.unwrap_or_else(|| format!("SIM{}", random_code(b"0123456789ABCDEF", 20)));
            let acked = state.deliver(
                &request.session_id,
                &request.from,
                wa_id.clone(),
                request.content,
                (None, Vec::new()),
            );
            (acked, wa_id, online)
        };
        if !online {
            return Ok(Injected { wa_id, stored: false });
        }
        match tokio::time::timeout(Duration::from_secs(10), acked).await {
            Ok(Ok(())) => Ok(Injected { wa_id, stored: true }),
            _ => Err(SimError::Timeout),
        }
    }

    /// Sets a session's send faults.
    pub fn set_faults(&self, session: &SessionId, faults: Faults) {
        self.state().devices.entry(session.clone()).or_default().faults = faults;
    }

    /// Drops a session's connection as a network failure would.
    pub fn drop_connection(&self, session: &SessionId) -> Result<(), SimError> {
        let mut state = self.state();
        let sink =
            state.devices.get_mut(session).and_then(|d| d.live.take()).ok_or(SimError::NotConnected)?;
        let _ = sink.send(ConnectorEvent::Disconnected {
            reason: "connection lost (simulated fault)".into(),
            reconnect: true,
        });
        Ok(())
    }
}
