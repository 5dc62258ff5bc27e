//! Prometheus metrics at `GET /metrics`. Counters and histograms are recorded where things
//! happen (HTTP requests, webhook attempts) or follow from the event feed (messages, events,
//! send latencies: each event counted by the node that numbered it, so that the nodes of a
//! cluster add up to each event once); gauges (sessions, outbox, webhook backlog) are read
//! from the store at each scrape, the same on every node; process memory and CPU come from the
//! operating system.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use wagate_core::{Event, EventData, MessageId, MessageStatus, SessionId, Timestamp};

use crate::engine::Engine;
use crate::AppState;

/// Histogram buckets, in seconds: from a millisecond to five minutes.
const BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Messages whose `sent` time is remembered until they are delivered, at most.
const MAX_TRACKED_SENDS: usize = 100_000;

struct Exporter {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    /// Session gauges reported before, so that a combination that vanished reads 0.
    reported_sessions: Mutex<HashSet<(String, String)>>,
}

/// The process-wide exporter (a process has one metrics recorder).
fn exporter() -> &'static Exporter {
    static EXPORTER: OnceLock<Exporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let builder = PrometheusBuilder::new().set_buckets(BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
        let handle = builder.install_recorder().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics shows process metrics only");
            PrometheusBuilder::new().build_recorder().handle()
        });
        let process = metrics_process::Collector::new("wagate_");
        process.describe();
        describe();
        Exporter { handle, process, reported_sessions: Mutex::new(HashSet::new()) }
    })
}

/// Starts recording (idempotent).
pub(crate) fn install() {
    exporter();
}

fn describe() {
    describe_counter!("wagate_http_requests_total", "HTTP requests answered, by method, route and status");
    describe_histogram!(
        "wagate_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency, by method and route"
    );
    describe_counter!(
        "wagate_messages_total",
        "Messages by connector, direction and status reached (sent, delivered, read, failed; received)"
    );
    describe_histogram!(
        "wagate_send_latency_seconds",
        Unit::Seconds,
        "Outbound message latency by stage: accepted_to_sent, sent_to_delivered"
    );
    describe_counter!("wagate_events_total", "Events appended to the log, by type");
    describe_counter!(
        "wagate_retention_deleted_total",
        "Rows the retention sweep deleted, by table (events, webhook_deliveries, messages)"
    );
    describe_histogram!(
        "wagate_retention_sweep_duration_seconds",
        Unit::Seconds,
        "How long one retention sweep of a table took, pauses between batches included"
    );
    describe_gauge!("wagate_sessions", "Sessions by connector and status");
    describe_gauge!("wagate_outbox_messages", "Outbound messages waiting to be sent");
    describe_gauge!(
        "wagate_outbox_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest message waiting to be sent"
    );
    describe_counter!(
        "wagate_webhook_attempts_total",
        "Webhook delivery attempts by result: delivered, retry, failed"
    );
    describe_histogram!("wagate_webhook_attempt_duration_seconds", Unit::Seconds, "Webhook attempt latency");
    describe_gauge!(
        "wagate_webhook_deliveries_pending",
        "Webhook deliveries waiting for their first or next attempt"
    );
    describe_gauge!(
        "wagate_webhook_oldest_pending_age_seconds",
        Unit::Seconds,
        "Age of the oldest pending webhook delivery"
    );
    describe_gauge!("wagate_events_unnumbered", "Events committed but not yet numbered (PostgreSQL)");
    describe_gauge!(
        "wagate_events_unnumbered_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest event not yet numbered"
    );
    describe_histogram!(
        "wagate_event_numbering_seconds",
        Unit::Seconds,
        "Time of one numbering of committed events, including the wait for another node's"
    );
    describe_gauge!("wagate_db_lock_waits", "Database connections waiting for a lock (PostgreSQL)");
}

/// Records one numbering of committed events.
pub(crate) fn events_numbered(elapsed: Duration) {
    histogram!("wagate_event_numbering_seconds").record(elapsed.as_secs_f64());
}

/// Counts every HTTP request by the route it matched.
pub(crate) async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    counter!("wagate_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!("wagate_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Records one webhook attempt.
pub(crate) fn webhook_attempt(result: &'static str, latency_ms: u64) {
    counter!("wagate_webhook_attempts_total", "result" => result).increment(1);
    histogram!("wagate_webhook_attempt_duration_seconds").record(latency_ms as f64 / 1000.0);
}

/// `GET /metrics` in the Prometheus text format.
#[utoipa::path(operation_id = "server_render", get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus text format")))]
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let exporter = exporter();
    exporter.process.collect();
    match state.engine.store().stats().await {
        Ok(stats) => {
            let now = state.engine.now();
            let age = |oldest: Option<Timestamp>| {
                oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            };
            let mut reported = exporter.reported_sessions.lock();
            for (connector, status) in reported.iter() {
                gauge!("wagate_sessions", "connector" => connector.clone(), "status" => status.clone())
                    .set(0.0);
            }
            for (connector, status, count) in stats.sessions {
                gauge!("wagate_sessions", "connector" => connector.clone(), "status" => status.clone())
                    .set(count as f64);
                reported.insert((connector, status));
            }
            gauge!("wagate_outbox_messages").set(stats.outbox as f64);
            gauge!("wagate_outbox_oldest_age_seconds").set(age(stats.outbox_oldest));
            gauge!("wagate_webhook_deliveries_pending").set(stats.deliveries_pending as f64);
            gauge!("wagate_webhook_oldest_pending_age_seconds").set(age(stats.deliveries_oldest));
            gauge!("wagate_events_unnumbered").set(stats.events_unnumbered as f64);
            gauge!("wagate_events_unnumbered_oldest_age_seconds").set(age(stats.events_unnumbered_oldest));
            gauge!("wagate_db_lock_waits").set(stats.lock_waits as f64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the store's counts for /metrics"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], exporter.handle.render()).into_response()
}

/// Follows the event feed until `stop` and turns events into message and event metrics.
pub(crate) async fn observe(engine: Arc<Engine>, stop: CancellationToken) {
    let mut events = engine.subscribe();
    let mut observer =
        Observer { engine: Arc::clone(&engine), connectors: HashMap::new(), sent_at: HashMap::new() };
    while let Some(received) = stop.run_until_cancelled(events.recv()).await {
        match received {
            Ok(event) => observer.see(&event).await,
            // Metrics may miss a few events when the node is overloaded; the log does not.
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

struct Observer {
    engine: Arc<Engine>,
    /// Each session's connector, looked up once.
    connectors: HashMap<SessionId, &'static str>,
    /// When each message still on its way was sent.
    sent_at: HashMap<MessageId, Timestamp>,
}

impl Observer {
    /// Every node sees every event; only the node that numbered it counts it, so each event is
    /// counted once over the cluster (times sent are remembered from every event, so a message
    /// sent and delivered in turns of different nodes still has its latency recorded once).
    async fn see(&mut self, event: &Event) {
        let counted = self.engine.numbered_here(event.id);
        if counted {
            counter!("wagate_events_total", "type" => event.kind().as_str()).increment(1);
        }
        let (direction, status, message) = match &event.data {
            EventData::MessageReceived(_) => ("in", MessageStatus::Received, None),
            EventData::MessageStatus(change) => match change.status {
                MessageStatus::Sent
                | MessageStatus::Delivered
                | MessageStatus::Read
                | MessageStatus::Failed
                | MessageStatus::Canceled => ("out", change.status, Some(&change.message_id)),
                _ => return,
            },
            _ => return,
        };
        if counted {
            let connector = self.connector(event.session_id.as_ref()).await;
            counter!("wagate_messages_total", "connector" => connector, "direction" => direction, "status" => status.as_str())
                .increment(1);
        }
        let Some(message) = message else { return };
        match status {
            MessageStatus::Sent => {
                if counted {
                    let accepted_ms = i64::try_from(message.created_ms()).unwrap_or(0);
                    let waited = (event.created_at.timestamp_millis() - accepted_ms).max(0);
                    histogram!("wagate_send_latency_seconds", "stage" => "accepted_to_sent")
                        .record(waited as f64 / 1000.0);
                }
                if self.sent_at.len() < MAX_TRACKED_SENDS {
                    self.sent_at.insert(message.clone(), event.created_at);
                }
            }
            MessageStatus::Delivered => {
                if let Some(sent) = self.sent_at.remove(message).filter(|_| counted) {
                    let took = (event.created_at - sent).num_milliseconds().max(0);
                    histogram!("wagate_send_latency_seconds", "stage" => "sent_to_delivered")
                        .record(took as f64 / 1000.0);
                }
            }
            _ => {
                self.sent_at.remove(message);
            }
        }
    }

    async fn connector(&mut self, session: Option<&SessionId>) -> &'static str {
        let Some(session) = session else { return "none" };
        if let Some(known) = self.connectors.get(session) {
            return known;
        }
        let kind = match self.engine.store().get_session(session).await {
            Ok(Some(found)) => found.connector.as_str(),
            _ => "unknown",
        };
        self.connectors.insert(session.clone(), kind);
        kind
    }
}
