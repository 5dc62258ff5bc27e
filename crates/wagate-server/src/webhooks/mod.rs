//! Webhook deliveries: a deliverer claims due deliveries from the store (leased, so an
//! attempt cut short by a crash is made again), POSTs them signed, and records every attempt.
//! At most `max_in_flight` deliveries per webhook are in flight, so a slow or dead receiver
//! holds up only its own deliveries.

mod attempt;
pub(crate) mod signing;
pub(crate) mod targets;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wagate_core::{DeliveryId, Event, EventData, Webhook, WebhookId};
use wagate_store::{AttemptOutcome, AttemptRecord, ClaimedDelivery, DeliverySlots, StoreResult};

use crate::config::{ms, WebhooksConfig};
use crate::engine::Engine;
use crate::group_commit::GroupCommit;
use crate::tasks::Tasks;

/// Runs webhook deliveries in the background.
pub(crate) struct Deliverer {
    wake: Arc<Notify>,
    /// The delivery worker.
    tasks: Tasks,
}

impl Deliverer {
    pub(crate) fn start(engine: Arc<Engine>, config: WebhooksConfig) -> anyhow::Result<Self> {
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
                        if let EventData::WebhookDisabled(data) = &event.data {
                            tracing::warn!(webhook_id = %data.webhook_id, "webhook disabled: {}", data.reason);
                        }
                    }
                    engine.publish(disabled);
                    StoreResult::Ok(vec![(); count])
                }
            })
        };
        let wake = Arc::new(Notify::new());
        let tasks = Tasks::default();
        let worker = Worker {
            engine,
            config,
            client,
            records: Arc::new(records),
            lanes: HashMap::new(),
            attempts: JoinSet::new(),
            writes: JoinSet::new(),
        };
        tasks.spawn(worker.run(Arc::clone(&wake), tasks.stopping()));
        Ok(Self { wake, tasks })
    }

    /// Whether the delivery worker is alive.
    pub(crate) fn is_running(&self) -> bool {
        self.tasks.is_running()
    }

    /// Looks for due deliveries now (a webhook was added or changed, a retry or replay was asked for).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops claiming deliveries, lets the attempts in flight finish and records them.
    pub(crate) async fn stop(&self) {
        self.tasks.stop().await;
    }
}

/// How many rounds of `max_in_flight` attempts a webhook's claims reach ahead: one claim
/// feeds several rounds, so claims (write transactions) stay few when deliveries flow fast.
const PREFETCH_ROUNDS: u32 = 4;

/// One webhook's deliveries on this node: attempts in flight and claimed ones waiting their turn.
#[derive(Default)]
struct Lane {
    in_flight: u32,
    waiting: VecDeque<(Arc<Webhook>, ClaimedDelivery)>,
}

impl Lane {
    fn held(&self) -> u32 {
        self.in_flight + self.waiting.len() as u32
    }
}

struct Worker {
    engine: Arc<Engine>,
    config: WebhooksConfig,
    client: reqwest::Client,
    records: Arc<GroupCommit<AttemptRecord, ()>>,
    /// Every enabled webhook seen in the last claim has a lane, and so has any webhook with
    /// deliveries still held here.
    lanes: HashMap<WebhookId, Lane>,
    attempts: JoinSet<(WebhookId, AttemptRecord)>,
    writes: JoinSet<()>,
}

impl Worker {
    async fn run(mut self, wake: Arc<Notify>, stop: CancellationToken) {
        let mut events = self.engine.subscribe();
        let poll = ms(self.config.poll_interval_ms);
        let mut claim = true;
        while !stop.is_cancelled() {
            if claim {
                claim = false;
                self.claim().await;
            }
            tokio::select! {
                () = stop.cancelled() => {}
                _ = wake.notified() => claim = true,
                _ = tokio::time::sleep(poll) => claim = true,
                received = events.recv() => {
                    // The feed lives as long as the engine.
                    if matches!(received, Err(RecvError::Closed)) {
                        break;
                    }
                    // New events may have queued deliveries; take all that arrived at once.
                    while !matches!(events.try_recv(), Err(TryRecvError::Empty | TryRecvError::Closed)) {}
                    claim |= self.lanes.values().any(|lane| self.has_room(lane));
                }
                Some(done) = self.attempts.join_next(), if !self.attempts.is_empty() => {
                    claim |= self.finished(done);
                }
                Some(_) = self.writes.join_next(), if !self.writes.is_empty() => {}
            }
        }
        // Deliveries claimed but not started go back to the store, due now.
        let waiting: Vec<DeliveryId> = self
            .lanes
            .values_mut()
            .flat_map(|lane| lane.waiting.drain(..).map(|(_, delivery)| delivery.id))
            .collect();
        if let Err(e) = self.engine.store().release_deliveries(waiting, self.engine.now()).await {
            tracing::warn!(error = %e, "cannot release claimed deliveries; they are due again when their lease ends");
        }
        while let Some(done) = self.attempts.join_next().await {
            self.finished(done);
        }
        while self.writes.join_next().await.is_some() {}
        self.records.stop().await;
    }

    fn prefetch(&self) -> u32 {
        self.config.max_in_flight.get() * PREFETCH_ROUNDS
    }

    /// Whether a lane has room for a batch: at most half its prefetch held. Claiming for
    /// every free slot would cost a transaction per delivery.
    fn has_room(&self, lane: &Lane) -> bool {
        lane.held() <= self.prefetch() / 2
    }

    async fn claim(&mut self) {
        let now = self.engine.now();
        // A claimed delivery may wait its turn behind PREFETCH_ROUNDS rounds of attempts, each
        // lasting at most the timeout; the lease covers that and its own attempt, with a margin.
        let lease_ms = self.config.timeout_ms.get().saturating_mul(u64::from(PREFETCH_ROUNDS) + 2);
        let lease = now + chrono::Duration::milliseconds(i64::try_from(lease_ms).unwrap_or(i64::MAX));
        let held = self.lanes.iter().map(|(id, lane)| (id.clone(), lane.held())).collect();
        let slots = DeliverySlots { max_in_flight: self.prefetch(), in_flight: held };
        let claimed = match self.engine.store().claim_deliveries(slots, now, lease).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim webhook deliveries");
                return;
            }
        };
        let enabled: HashSet<WebhookId> = claimed.iter().map(|(webhook, _)| webhook.id.clone()).collect();
        for (webhook, deliveries) in claimed {
            let webhook = Arc::new(webhook);
            let lane = self.lanes.entry(webhook.id.clone()).or_default();
            lane.waiting.extend(deliveries.into_iter().map(|d| (Arc::clone(&webhook), d)));
        }
        // Webhooks deleted or disabled since keep their lane until it is empty.
        self.lanes.retain(|id, lane| enabled.contains(id) || lane.held() > 0);
        let ids: Vec<WebhookId> = self.lanes.keys().cloned().collect();
        for id in ids {
            self.start_attempts(&id);
        }
    }

    /// Starts waiting deliveries of a webhook while it has free slots.
    fn start_attempts(&mut self, id: &WebhookId) {
        let Some(lane) = self.lanes.get_mut(id) else { return };
        while lane.in_flight < self.config.max_in_flight.get() {
            let Some((webhook, delivery)) = lane.waiting.pop_front() else { break };
            lane.in_flight += 1;
            let (client, config, now) = (self.client.clone(), self.config.clone(), self.engine.now());
            self.attempts.spawn(attempt(client, webhook, delivery, config, now));
        }
    }

    /// Frees the attempt's slot, starts the next waiting one and records this one; true when
    /// its webhook has room for another claim.
    fn finished(&mut self, done: Result<(WebhookId, AttemptRecord), tokio::task::JoinError>) -> bool {
        let (webhook, record) = match done {
            Ok(done) => done,
            Err(e) => {
                // The delivery stays leased and is attempted again when the lease runs out.
                tracing::error!(error = %e, "a webhook attempt panicked");
                return true;
            }
        };
        let lane = self.lanes.entry(webhook.clone()).or_default();
        lane.in_flight = lane.in_flight.saturating_sub(1);
        self.start_attempts(&webhook);
        let records = Arc::clone(&self.records);
        self.writes.spawn(async move {
            if let Err(e) = records.submit(vec![record]).await {
                tracing::error!(error = %e, "cannot record a webhook attempt; it will be made again");
            }
        });
        self.lanes.get(&webhook).is_some_and(|lane| self.has_room(lane))
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
    // Registration refused private targets; this catches URLs kept from a time they were allowed.
    let answer = if !config.allow_private_targets && targets::names_private_ip(&webhook.url) {
        attempt::refused(now, "the URL names a private address and webhooks.allow_private_targets is false")
    } else {
        attempt::post(&client, &webhook, &event, now).await
    };
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
    let result = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::RetryAt(_) => "retry",
        AttemptOutcome::Failed => "failed",
    };
    crate::metrics::webhook_attempt(result, attempt.latency_ms);
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
