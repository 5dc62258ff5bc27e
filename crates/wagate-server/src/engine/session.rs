//! One session's task: connect, stay connected (reconnecting with backoff), send its queued
//! messages in order and store everything its connection reports.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tracing::Instrument;
use wagate_connect::{
    Ack, Connection, Connector, ConnectorEvent, OutboundMessage, Receipt, SendError, SessionSpec,
};
use wagate_core::{EventData, Jid, MessageStatus, PhoneNumber, Session, SessionQrData, SessionStatus};
use wagate_store::{Credentials, Lease, MessageRef, NewInbound, SessionChange, StatusUpdate, StoreError};

use super::pacing::Pacer;
use super::{Command, CommitError, Engine, LinkCode};
use crate::config::ms;

/// The most connector events stored in one transaction.
const MAX_EVENT_BATCH: usize = 256;

/// What can stop a session task's step: the store, directly or through a group commit.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Why `drive` returned.
enum Outcome {
    Command(Command, oneshot::Sender<()>),
    /// The connection dropped; try again.
    Lost(String),
    /// The connection ended for good (for example nobody scanned the QR code).
    Ended(String),
    /// The connector refused to open the connection and trying again will not help.
    Failed(String),
    LoggedOut(String),
}

pub(super) async fn run(
    engine: Arc<Engine>,
    session: Session,
    lease: i64,
    connector: Arc<dyn Connector>,
    pairing_phone: Option<PhoneNumber>,
    commands: mpsc::UnboundedReceiver<(Command, oneshot::Sender<()>)>,
    wake: Arc<Notify>,
) {
    let span = tracing::info_span!("session", session_id = %session.id);
    async move {
        let pacer = Pacer::load(&engine.pacing, &session, engine.store.as_ref(), engine.now()).await;
        let mut runner = Runner { engine, session, lease, connected: false, pacer };
        if runner.run(connector, pairing_phone, commands, wake).await {
            let engine = Arc::clone(&runner.engine);
            engine.release(Lease { session_id: runner.session.id, token: lease, command: None }).await;
        }
    }
    .instrument(span)
    .await;
}

struct Runner {
    engine: Arc<Engine>,
    session: Session,
    /// The fencing token of this node's lease on the session, checked by the store on the
    /// session's writes: once another node holds the session, they are refused.
    lease: i64,
    connected: bool,
    pacer: Pacer,
}

impl Runner {
    /// Runs the session until it ends; false when its lease passed to another node (which
    /// then owns it: nothing more is written here).
    async fn run(
        &mut self,
        connector: Arc<dyn Connector>,
        mut pairing_phone: Option<PhoneNumber>,
        mut commands: mpsc::UnboundedReceiver<(Command, oneshot::Sender<()>)>,
        wake: Arc<Notify>,
    ) -> bool {
        let mut failures: u32 = 0;
        loop {
            let outcome = match self.attempt(&connector, pairing_phone.take(), &mut commands, &wake).await {
                Ok(outcome) => outcome,
                Err(RunError::Store(StoreError::Fenced)) => {
                    tracing::warn!("another node took the session over; stopping here");
                    return false;
                }
                Err(e) => {
                    tracing::error!(error = %e, "store error; reconnecting");
                    Outcome::Lost("internal error".into())
                }
            };
            // Every outcome but a lost connection ends the task.
            let (result, done) = match outcome {
                Outcome::Command(command, done) => (self.finish(command).await, Some(done)),
                Outcome::Ended(reason) => {
                    (self.set_status(SessionStatus::Disconnected, Some(reason), Some(false)).await, None)
                }
                Outcome::Failed(reason) => {
                    (self.set_status(SessionStatus::Failed, Some(reason), Some(false)).await, None)
                }
                Outcome::LoggedOut(reason) => {
                    let result = self.engine.logged_out(&self.session.id, reason).await;
                    // The phone unlinked the device: what the connector kept for it is void.
                    self.engine.forget(&self.session).await;
                    (result.map(drop).map_err(RunError::from), None)
                }
                Outcome::Lost(reason) => {
                    if self.connected {
                        failures = 0;
                    }
                    self.connected = false;
                    failures += 1;
                    match self.set_status(SessionStatus::Disconnected, Some(reason), None).await {
                        Err(RunError::Store(StoreError::Fenced)) => return false,
                        Err(e) => tracing::error!(error = %e, "could not record the disconnect"),
                        Ok(()) => {}
                    }
                    let delay = self.backoff(failures);
                    tracing::info!(delay_ms = delay.as_millis() as u64, "reconnecting after a delay");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        Some((command, done)) = commands.recv() => {
                            // Already offline: a shutdown leaves the status as it is.
                            let result = match command {
                                Command::Shutdown(_) => Ok(()),
                                other => self.finish(other).await,
                            };
                            (result, Some(done))
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "could not record the session's end");
            }
            if let Some(done) = done {
                let _ = done.send(());
            }
            return true;
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let config = &self.engine.config;
        let exp = config.reconnect_min_ms.saturating_mul(1u64 << failures.saturating_sub(1).min(20));
        let base = exp.min(config.reconnect_max_ms.get()) as f64;
        ms((base * rand::rng().random_range(0.8..1.2)) as u64)
    }

    async fn set_status(
        &mut self,
        status: SessionStatus,
        reason: Option<String>,
        auto_connect: Option<bool>,
    ) -> Result<(), RunError> {
        self.session = self
            .engine
            .change_session(
                &self.session.id,
                SessionChange {
                    status: Some(status),
                    reason,
                    auto_connect,
                    lease: Some(self.lease),
                    ..Default::default()
                },
            )
            .await?;
        Ok(())
    }

    /// Opens one connection and drives it until it ends or a command arrives.
    async fn attempt(
        &mut self,
        connector: &Arc<dyn Connector>,
        pairing_phone: Option<PhoneNumber>,
        commands: &mut mpsc::UnboundedReceiver<(Command, oneshot::Sender<()>)>,
        wake: &Notify,
    ) -> Result<Outcome, RunError> {
        if self.session.status != SessionStatus::Connecting {
            self.set_status(SessionStatus::Connecting, None, None).await?;
        }
        let (sink, mut events) = mpsc::unbounded_channel();
        let spec = SessionSpec {
            id: self.session.id.clone(),
            credentials: self.session.credentials.clone(),
            pairing_phone,
        };
        let opened = {
            let _permit = self.engine.connecting.acquire().await;
            connector.connect(spec, sink).await
        };
        let connection: Arc<dyn Connection> = match opened {
            Ok(connection) => Arc::from(connection),
            Err(wagate_connect::ConnectError::Retryable(reason)) => return Ok(Outcome::Lost(reason)),
            Err(wagate_connect::ConnectError::Permanent(reason)) => return Ok(Outcome::Failed(reason)),
        };
        self.engine.set_connection(&self.session.id, Some(Arc::clone(&connection)));
        let outcome = self.drive(connection.as_ref(), &mut events, commands, wake).await;
        self.engine.set_connection(&self.session.id, None);
        match &outcome {
            Ok(Outcome::Command(Command::Logout, _)) => connection.logout().await,
            Ok(Outcome::LoggedOut(_)) => {}
            _ => connection.disconnect().await,
        }
        outcome
    }

    async fn drive(
        &mut self,
        connection: &dyn Connection,
        events: &mut mpsc::UnboundedReceiver<ConnectorEvent>,
        commands: &mut mpsc::UnboundedReceiver<(Command, oneshot::Sender<()>)>,
        wake: &Notify,
    ) -> Result<Outcome, RunError> {
        // When to look at the queue next; None while nothing is queued.
        let mut next_send: Option<Instant> = None;
        loop {
            let due = next_send.filter(|_| self.connected);
            tokio::select! {
                biased;
                Some((command, done)) = commands.recv() => return Ok(Outcome::Command(command, done)),
                event = events.recv() => {
                    let Some(event) = event else {
                        return Ok(Outcome::Lost("connection closed".into()));
                    };
                    let mut batch = vec![event];
                    while batch.len() < MAX_EVENT_BATCH {
                        match events.try_recv() {
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                    let was_connected = self.connected;
                    if let Some(outcome) = self.handle(batch).await? {
                        return Ok(outcome);
                    }
                    if self.connected && !was_connected {
                        next_send = Some(Instant::now());
                    }
                }
                _ = wake.notified() => next_send = Some(Instant::now()),
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    next_send = self.send_due(connection).await?;
                }
            }
        }
    }

    /// Stores a batch of connector events in order; returns an outcome when the connection ended.
    async fn handle(&mut self, batch: Vec<ConnectorEvent>) -> Result<Option<Outcome>, RunError> {
        let mut inbound: Vec<(NewInbound, Ack)> = Vec::new();
        let mut receipts: Vec<StatusUpdate> = Vec::new();
        for event in batch {
            match event {
                ConnectorEvent::Inbound { message, ack } => {
                    inbound.push((super::new_inbound(&self.session, *message), ack));
                }
                ConnectorEvent::Receipt { wa_id, receipt, .. } => receipts.push(StatusUpdate {
                    message: MessageRef::WaId(self.session.id.clone(), wa_id),
                    status: match receipt {
                        Receipt::Delivered => MessageStatus::Delivered,
                        Receipt::Read => MessageStatus::Read,
                    },
                    reason: None,
                    wa_id: None,
                    retry_at: None,
                }),
                other => {
                    self.store_inbound(std::mem::take(&mut inbound)).await?;
                    self.engine.apply_statuses(std::mem::take(&mut receipts)).await?;
                    if let Some(outcome) = self.handle_state(other).await? {
                        return Ok(Some(outcome));
                    }
                }
            }
        }
        self.store_inbound(inbound).await?;
        self.engine.apply_statuses(receipts).await?;
        Ok(None)
    }

    /// Commits inbound messages, then acknowledges them to the connector.
    async fn store_inbound(&self, batch: Vec<(NewInbound, Ack)>) -> Result<(), RunError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (messages, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let events = self.engine.store.store_inbound(messages, self.engine.now()).await?;
        self.engine.publish(events);
        acks.into_iter().for_each(Ack::ack);
        Ok(())
    }

    async fn handle_state(&mut self, event: ConnectorEvent) -> Result<Option<Outcome>, RunError> {
        let engine = Arc::clone(&self.engine);
        let id = self.session.id.clone();
        match event {
            ConnectorEvent::Qr { code, expires_at } => {
                engine.set_link_code(&id, Some(LinkCode::Qr { code: code.clone(), expires_at }));
                if self.session.status != SessionStatus::Qr {
                    self.set_status(SessionStatus::Qr, None, None).await?;
                }
                let data = EventData::SessionQr(SessionQrData { code, expires_at });
                let event = engine.store.append_event(&id, data, engine.now()).await?;
                engine.publish([event]);
            }
            ConnectorEvent::PairingCode { code, expires_at } => {
                engine.set_link_code(&id, Some(LinkCode::Pairing { code: code.clone(), expires_at }));
                self.session = engine
                    .change_session(
                        &id,
                        SessionChange {
                            status: Some(SessionStatus::PairingCode),
                            pairing_code: Some((code, expires_at)),
                            lease: Some(self.lease),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            ConnectorEvent::Linked { phone, credentials } => {
                self.session = engine
                    .change_session(
                        &id,
                        SessionChange {
                            phone: Some(phone.to_string()),
                            jid: Some(phone.to_jid().to_string()),
                            credentials: Credentials::Set(credentials),
                            lease: Some(self.lease),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            ConnectorEvent::Connected { phone } => {
                engine.set_link_code(&id, None);
                self.session = engine
                    .change_session(
                        &id,
                        SessionChange {
                            status: Some(SessionStatus::Connected),
                            phone: Some(phone.to_string()),
                            jid: Some(phone.to_jid().to_string()),
                            lease: Some(self.lease),
                            ..Default::default()
                        },
                    )
                    .await?;
                self.connected = true;
                tracing::info!(phone = %phone, "connected");
            }
            ConnectorEvent::Disconnected { reason, reconnect } => {
                engine.set_link_code(&id, None);
                return Ok(Some(if reconnect { Outcome::Lost(reason) } else { Outcome::Ended(reason) }));
            }
            ConnectorEvent::LoggedOut { reason } => return Ok(Some(Outcome::LoggedOut(reason))),
            ConnectorEvent::Failed { reason } => {
                engine.set_link_code(&id, None);
                return Ok(Some(Outcome::Failed(reason)));
            }
            ConnectorEvent::Learned { contacts, chats } => {
                if !contacts.is_empty() {
                    engine.store.save_contacts(&id, contacts).await?;
                }
                if !chats.is_empty() {
                    engine.store.save_chats(&id, chats).await?;
                }
            }
            ConnectorEvent::Inbound { .. } | ConnectorEvent::Receipt { .. } => {}
        }
        Ok(None)
    }

    /// Sends one batch of due messages (one message when paced); returns when to look at the
    /// queue again.
    async fn send_due(&mut self, connection: &dyn Connection) -> Result<Option<Instant>, RunError> {
        let engine = Arc::clone(&self.engine);
        let config = &engine.config;
        if let Some(not_before) = self.pacer.not_before() {
            return Ok(Some(not_before));
        }
        let limit = self.pacer.batch(config.send_batch.get());
        let defer = self.pacer.deferrals(engine.now());
        let claim = engine.claim(&self.session.id, self.lease, limit, defer).await?;
        // When to look again: when the claim says, or sooner for a send to try again.
        let mut next_due = claim.next_due;
        let mut updates = Vec::with_capacity(claim.messages.len());
        for item in claim.messages {
            let message = item.message;
            let span = tracing::debug_span!("send", message_id = %message.id);
            let update = |status, reason, wa_id, retry_at| StatusUpdate {
                message: MessageRef::Id(message.id.clone()),
                status,
                reason,
                wa_id,
                retry_at,
            };
            let Ok(to) = Jid::parse(&message.to) else {
                updates.push(update(MessageStatus::Failed, Some("invalid_recipient".into()), None, None));
                continue;
            };
            let typing = self.pacer.typing_time(&message.content);
            if !typing.is_zero() {
                connection.typing(&to).await;
                tokio::time::sleep(typing).await;
            }
            let outbound = OutboundMessage {
                id: message.id.clone(),
                to,
                content: message.content.clone(),
                reply_to: message.context.as_ref().and_then(|c| c.wa_id.clone()),
                // Stored mentions were checked when the message was accepted.
                mentions: message.mentions.iter().filter_map(|m| Jid::parse(m).ok()).collect(),
                target: engine.target(&message).await,
            };
            let result = connection.send(&outbound).instrument(span).await;
            updates.push(match result {
                Ok(wa_id) => {
                    self.pacer.sent(message.to.clone(), engine.now());
                    update(MessageStatus::Sent, None, Some(wa_id), None)
                }
                Err(SendError::Permanent { code, .. }) => {
                    update(MessageStatus::Failed, Some(code), None, None)
                }
                Err(SendError::Retryable(reason)) if item.attempts + 1 >= config.send_max_attempts.get() => {
                    update(MessageStatus::Failed, Some(format!("send_failed: {reason}")), None, None)
                }
                Err(SendError::Retryable(reason)) => {
                    let delay = config.send_retry_base_ms.saturating_mul(1u64 << item.attempts.min(16));
                    let retry_at = engine.now() + ms(delay);
                    next_due = Some(next_due.map_or(retry_at, |due| due.min(retry_at)));
                    update(MessageStatus::Queued, Some(reason), None, Some(retry_at))
                }
            });
        }
        self.engine.apply_statuses(updates).await?;
        Ok(next_due.map(|due| {
            let wait = (due - engine.now()).to_std().unwrap_or_default();
            let due = Instant::now() + wait;
            self.pacer.not_before().map_or(due, |not_before| due.max(not_before))
        }))
    }

    /// Carries out a command on a live connection (already closed by `attempt`).
    async fn finish(&mut self, command: Command) -> Result<(), RunError> {
        match command {
            Command::Disconnect => {
                self.set_status(
                    SessionStatus::Disconnected,
                    Some("disconnected by request".into()),
                    Some(false),
                )
                .await
            }
            Command::Logout => self
                .engine
                .logged_out(&self.session.id, "logged out by request".into())
                .await
                .map(drop)
                .map_err(RunError::from),
            Command::Shutdown(reason) => {
                self.set_status(SessionStatus::Disconnected, Some(reason.into()), None).await
            }
        }
    }
}
