//! Webhook deliveries: a deliverer claims due deliveries from the store (leased, so an
//! attempt cut short by a crash is made again), POSTs them signed, and records every attempt.
//! At most `max_in_flight` deliveries per webhook are in flight, so a slow or dead receiver
//! holds up only its own deliveries.

mod attempt;
pub mod signing;
pub mod targets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use wagate_core::{Event, Webhook, WebhookId};
use wagate_store::{AttemptOutcome, AttemptRecord, ClaimedDelivery, DeliverySlots, StoreResult};

use crate::config::{ms, WebhooksConfig};
use crate::engine::{Engine, GroupCommit};
pub use attempt::RESPONSE_PREFIX;

/// Runs webhook deliveries in the background.
pub struct Deliverer {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Deliverer {
    pub fn start(engine: Arc<Engine>, config: WebhooksConfig) -> anyhow::Result<Self> {
        let mut client = reqwest::Client::builder()
            .timeout(ms(config.timeout_ms))
            .redirect(reqwest::redirect::Policy::none());
        if !config.allow_private_targets {
            client = client.dns_resolver(Arc::new(targets::PublicOnly));
        }
        let client = client.build()?;
        let records = {
            let engine = Arc::clone(&engine);
            let disable_after = chrono::Duration::milliseconds(i64::try_from(config.disable_after_ms)?);
            GroupCommit::start(move |records: Vec<AttemptRecord>| {
                let engine = Arc::clone(&engine);
                async move {
                    let count = records.len();
                    let disabled =
                        engine.store().record_attempts(records, engine.now(), disable_after).await?;
                    for event in &disabled {
                        tracing::warn!(webhook_id = %event.data["webhook_id"], "webhook disabled: {}", event.data["reason"]);
                    }
                    engine.publish(disabled);
                    StoreResult::Ok(vec![(); count])
                }
            })
        };
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            engine,
            config,
            client,
            records: Arc::new(records),
            in_flight: HashMap::new(),
            attempts: JoinSet::new(),
            writes: JoinSet::new(),
        };
        let task = tokio::spawn(worker.run(Arc::clone(&wake), stopped));
        Ok(Self { wake, stop, task: Mutex::new(Some(task)) })
    }

    /// Looks for due deliveries now (a webhook was added or changed, a retry or replay was asked for).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops claiming deliveries, lets the attempts in flight finish and records them.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

struct Worker {
    engine: Arc<Engine>,
    config: WebhooksConfig,
    client: reqwest::Client,
    records: Arc<GroupCommit<AttemptRecord, ()>>,
    /// Attempts in flight per webhook; every enabled webhook seen in the last claim has an entry.
    in_flight: HashMap<WebhookId, u32>,
    attempts: JoinSet<(WebhookId, AttemptRecord)>,
    writes: JoinSet<()>,
}

impl Worker {
    async fn run(mut self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let mut events = self.engine.subscribe();
        let poll = ms(self.config.poll_interval_ms);
        let mut claim = true;
        while !*stop.borrow() {
            if claim {
                claim = false;
                self.claim().await;
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = wake.notified() => claim = true,
                _ = tokio::time::sleep(poll) => claim = true,
                received = events.recv() => {
                    // The feed lives as long as the engine.
                    if matches!(received, Err(RecvError::Closed)) {
                        break;
                    }
                    // New events may have queued deliveries; take all that arrived at once.
                    while !matches!(events.try_recv(), Err(TryRecvError::Empty | TryRecvError::Closed)) {}
                    claim |= self.has_free_slot();
                }
                Some(done) = self.attempts.join_next(), if !self.attempts.is_empty() => {
                    claim |= self.finished(done);
                }
                Some(_) = self.writes.join_next(), if !self.writes.is_empty() => {}
            }
        }
        while let Some(done) = self.attempts.join_next().await {
            self.finished(done);
        }
        while self.writes.join_next().await.is_some() {}
        self.records.stop().await;
    }

    /// Whether some known webhook could take another delivery.
    fn has_free_slot(&self) -> bool {
        self.in_flight.values().any(|n| *n < self.config.max_in_flight)
    }

    async fn claim(&mut self) {
        let now = self.engine.now();
        // An attempt lasts at most the timeout; the lease covers it twice over.
        let lease = now
            + chrono::Duration::milliseconds(i64::try_from(self.config.timeout_ms * 2).unwrap_or(i64::MAX));
        let slots =
            DeliverySlots { max_in_flight: self.config.max_in_flight, in_flight: self.in_flight.clone() };
        let claimed = match self.engine.store().claim_deliveries(slots, now, lease).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim webhook deliveries");
                return;
            }
        };
        let mut in_flight = HashMap::with_capacity(claimed.len());
        for (webhook, deliveries) in claimed {
            let busy = self.in_flight.get(&webhook.id).copied().unwrap_or(0);
            in_flight.insert(webhook.id.clone(), busy + deliveries.len() as u32);
            let webhook = Arc::new(webhook);
            for delivery in deliveries {
                self.attempts.spawn(attempt(
                    self.client.clone(),
                    Arc::clone(&webhook),
                    delivery,
                    self.config.clone(),
                    self.engine.now(),
                ));
            }
        }
        // Webhooks deleted or disabled since keep their count until their attempts finish.
        for (id, busy) in &self.in_flight {
            if *busy > 0 {
                in_flight.entry(id.clone()).or_insert(*busy);
            }
        }
        self.in_flight = in_flight;
    }

    /// Frees the attempt's slot and records it; true when its webhook has room for more.
    fn finished(&mut self, done: Result<(WebhookId, AttemptRecord), tokio::task::JoinError>) -> bool {
        let (webhook, record) = match done {
            Ok(done) => done,
            Err(e) => {
                // The delivery stays leased and is attempted again when the lease runs out.
                tracing::error!(error = %e, "a webhook attempt panicked");
                return true;
            }
        };
        let busy = self.in_flight.entry(webhook).or_default();
        *busy = busy.saturating_sub(1);
        let room = *busy <= self.config.max_in_flight / 2;
        let records = Arc::clone(&self.records);
        self.writes.spawn(async move {
            if let Err(e) = records.submit(vec![record]).await {
                tracing::error!(error = %e, "cannot record a webhook attempt; it will be made again");
            }
        });
        room
    }
}

async fn attempt(
    client: reqwest::Client,
    webhook: Arc<Webhook>,
    delivery: ClaimedDelivery,
    config: WebhooksConfig,
    now: wagate_core::Timestamp,
) -> (WebhookId, AttemptRecord) {
    let ClaimedDelivery { id, event, attempts } = delivery;
    let answer = attempt::post(&client, &webhook, &event, now).await;
    let outcome = if answer.delivered {
        AttemptOutcome::Delivered
    } else {
        attempt::after_failure(&config, attempts + 1, answer.retry_after, now)
    };
    log_attempt(&webhook, &event, &answer.attempt, outcome);
    let record =
        AttemptRecord { delivery: id, webhook_id: webhook.id.clone(), attempt: answer.attempt, outcome };
    (webhook.id.clone(), record)
}

fn log_attempt(webhook: &Webhook, event: &Event, attempt: &wagate_core::Attempt, outcome: AttemptOutcome) {
    match outcome {
        AttemptOutcome::Delivered => {
            tracing::debug!(webhook_id = %webhook.id, event_id = %event.id, latency_ms = attempt.latency_ms, "webhook delivered")
        }
        AttemptOutcome::RetryAt(at) => tracing::info!(
            webhook_id = %webhook.id, event_id = %event.id, error = attempt.error.as_deref().unwrap_or(""), retry_at = %at,
            "webhook attempt failed"
        ),
        AttemptOutcome::Failed => tracing::warn!(
            webhook_id = %webhook.id, event_id = %event.id, error = attempt.error.as_deref().unwrap_or(""),
            "webhook delivery failed after its last attempt"
        ),
    }
}
