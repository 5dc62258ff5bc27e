//! Retention: the sweep deletes events, webhook deliveries and messages older than their age,
//! keeps what is recent or still needed, tells readers resuming after deleted events that they
//! missed some, and never disturbs the messages being sent while it runs.
//!
//! The server's clock jumps forward instead of the test waiting: rows written before a jump
//! are older than the retention, rows written after it are not.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wagate_core::{Clock, Timestamp};
use wagate_server::Config;

use crate::common::{event_seq, eventually, fast_config, history, nz, TestData, TestServer};
use crate::receiver::{Answer, Receiver};

const HOUR_MS: i64 = 3_600_000;

/// The wall clock, plus however far the test has moved it forward.
#[derive(Default)]
struct JumpingClock {
    ahead_ms: AtomicI64,
}

impl JumpingClock {
    fn jump(&self, ms: i64) {
        self.ahead_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for JumpingClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now() + chrono::Duration::milliseconds(self.ahead_ms.load(Ordering::SeqCst))
    }
}

/// A server that keeps events, deliveries and messages for an hour and sweeps every 20 ms in
/// small batches.
async fn start(tweak: impl FnOnce(&mut Config)) -> (TestServer, Arc<JumpingClock>) {
    let dir = TestData::new().await;
    let mut config = fast_config(&dir);
    config.retention.events_ms = HOUR_MS as u64;
    config.retention.deliveries_ms = HOUR_MS as u64;
    config.retention.messages_ms = HOUR_MS as u64;
    config.retention.sweep_ms = nz(20u64);
    config.retention.batch = nz(7u32);
    config.retention.pause_ms = 1;
    tweak(&mut config);
    let clock = Arc::new(JumpingClock::default());
    let server = TestServer::start_with_clock(dir, config, clock.clone()).await;
    (server, clock)
}

async fn status_of(server: &TestServer, message: &str) -> StatusCode {
    server.get(&format!("/v1/messages/{message}")).await.0
}

/// Waits until every `message.*` event in the log has been delivered to `hook`.
async fn all_delivered(server: &TestServer, hook: &str) {
    eventually(|| async {
        let wanted = server
            .all_events()
            .await
            .iter()
            .filter(|e| e["type"].as_str().unwrap().starts_with("message."))
            .count();
        let deliveries = server.deliveries(hook, "").await;
        (deliveries.len() == wanted && deliveries.iter().all(|d| d["status"] == "delivered")).then_some(())
    })
    .await;
}

/// The value of one sample line of the metrics page (0 when absent).
async fn metric(server: &TestServer, line: &str) -> f64 {
    let page = server.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    page.lines().find_map(|l| l.strip_prefix(line).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test]
async fn old_rows_go_and_recent_or_needed_ones_stay() {
    let (server, clock) = start(|c| {
        // A failed attempt is retried once at once, then in ten days: its delivery stays pending.
        c.webhooks.retry_schedule_ms = vec![20, 240 * HOUR_MS as u64];
    })
    .await;
    let working = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.answer_always(Answer::Status(500));
    let (hook, _) = server.create_webhook(&working.url, json!(["message.*"])).await;
    let (stuck, _) = server.create_webhook(&failing.url, json!(["session.status"])).await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;

    let old = server.send_texts("alice", "15550002222", "old", 3).await;
    for id in &old {
        server.wait_for_message_status(id, "read").await;
    }
    let received: Vec<String> =
        server.messages("bob", "in").await.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(received.len(), 3);
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let (status, scheduled) = server
        .post(
            "/v1/sessions/alice/messages",
            json!({ "to": "15550002222", "type": "text", "text": { "body": "tomorrow" }, "scheduled_at": later }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{scheduled}");
    let scheduled = scheduled["id"].as_str().unwrap().to_owned();
    all_delivered(&server, &hook).await;
    let pending = eventually(|| async {
        let pending = server.deliveries(&stuck, "&status=pending").await;
        (!pending.is_empty() && pending.iter().all(|d| d["attempt_count"] == 2)).then_some(pending)
    })
    .await;
    let old_events = server.all_events().await;
    let first_old = event_seq(&old_events[0]);
    let old_last = event_seq(old_events.last().unwrap());

    clock.jump(2 * HOUR_MS);
    let new = server.send_texts("alice", "15550002222", "new", 2).await;
    for id in &new {
        server.wait_for_message_status(id, "read").await;
    }

    // The old messages, sent and received, answer 404 once swept.
    eventually(|| async {
        for id in old.iter().chain(&received) {
            if status_of(&server, id).await != StatusCode::NOT_FOUND {
                return None;
            }
        }
        Some(())
    })
    .await;
    // Of the old events, only those a pending delivery still has to carry are left.
    let events = eventually(|| async {
        let events = server.all_events().await;
        events
            .iter()
            .filter(|e| event_seq(e) <= old_last)
            .all(|e| e["type"] == "session.status")
            .then_some(events)
    })
    .await;
    let held: Vec<u64> = events.iter().map(event_seq).filter(|seq| *seq <= old_last).collect();
    let carried: Vec<u64> = pending.iter().map(|d| event_seq(&json!({ "id": d["event_id"] }))).collect();
    assert!(held.iter().all(|seq| carried.contains(seq)), "held {held:?}, pending deliveries of {carried:?}");
    assert_eq!(server.deliveries(&stuck, "&status=pending").await.len(), pending.len());

    // Every event since the jump is there, numbered one after another.
    let recent: Vec<u64> = events.iter().map(event_seq).filter(|seq| *seq > old_last).collect();
    assert_eq!(recent, (old_last + 1..=*recent.last().unwrap()).collect::<Vec<_>>());
    for id in &new {
        let (status, message) = server.get(&format!("/v1/messages/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{message}");
        assert_eq!(history(&message).last().map(String::as_str), Some("read"));
    }
    let (status, message) = server.get(&format!("/v1/messages/{scheduled}")).await;
    assert_eq!((status, message["status"].as_str()), (StatusCode::OK, Some("scheduled")), "{message}");

    // The working webhook's deliveries left are those of the new events.
    let deliveries = server.deliveries(&hook, "").await;
    assert!(!deliveries.is_empty());
    assert!(
        deliveries.iter().all(|d| event_seq(&json!({ "id": d["event_id"] })) > old_last),
        "{deliveries:?}"
    );

    // A reader resuming from an old event is told what it missed, and reads on from there.
    let (status, body) = server.get(&format!("/v1/events?after=evt_{first_old}")).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["code"], "events_expired");
    let through = body["error"]["details"]["expired_through"].as_str().unwrap().to_owned();
    assert!(event_seq(&json!({ "id": through })) <= old_last);
    let (status, body) = server.get(&format!("/v1/events?after={through}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(event_seq(&body["data"][0]), old_last + 1, "{body}");
    let response = server
        .request(Method::GET, "/v1/events/stream")
        .header("Last-Event-ID", format!("evt_{first_old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "events_expired");

    assert!(metric(&server, r#"wagate_retention_deleted_total{table="events"}"#).await > 0.0);
    assert!(metric(&server, r#"wagate_retention_deleted_total{table="messages"}"#).await > 0.0);
    assert!(metric(&server, r#"wagate_retention_sweep_duration_seconds_count{table="events"}"#).await > 0.0);
}

#[tokio::test]
async fn deliveries_kept_shorter_than_their_events_go_first() {
    let (server, clock) = start(|c| {
        c.retention.events_ms = 0;
        c.retention.messages_ms = 0;
    })
    .await;
    let working = Receiver::start().await;
    let (hook, _) = server.create_webhook(&working.url, json!(["message.*"])).await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let old = server.send_text("alice", "15550002222", "old").await["id"].as_str().unwrap().to_owned();
    server.wait_for_message_status(&old, "read").await;
    all_delivered(&server, &hook).await;
    let old_events = server.all_events().await;
    let old_last = event_seq(old_events.last().unwrap());

    clock.jump(2 * HOUR_MS);
    let new = server.send_text("alice", "15550002222", "new").await["id"].as_str().unwrap().to_owned();
    server.wait_for_message_status(&new, "read").await;
    let deliveries = eventually(|| async {
        let deliveries = server.deliveries(&hook, "").await;
        deliveries.iter().all(|d| event_seq(&json!({ "id": d["event_id"] })) > old_last).then_some(deliveries)
    })
    .await;
    assert!(!deliveries.is_empty());
    // The events and the message are kept for ever.
    assert_eq!(server.all_events().await[..old_events.len()], old_events[..]);
    assert_eq!(status_of(&server, &old).await, StatusCode::OK);
}

#[tokio::test]
async fn a_sweep_under_load_leaves_every_send_and_every_recent_event() {
    let (server, clock) = start(|c| {
        // Many small batches, so that the sweep is still deleting while the sends go.
        c.retention.batch = nz(3u32);
        c.retention.pause_ms = 2;
    })
    .await;
    let working = Receiver::start().await;
    let (hook, _) = server.create_webhook(&working.url, json!(["message.*"])).await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let old = server.send_texts("alice", "15550002222", "old", 40).await;
    for id in &old {
        server.wait_for_message_status(id, "read").await;
    }
    all_delivered(&server, &hook).await;
    let old_last = event_seq(server.all_events().await.last().unwrap());

    clock.jump(2 * HOUR_MS);
    let senders = (0..4).map(|n| {
        let server = &server;
        async move { server.send_texts("alice", "15550002222", &format!("load{n}-"), 25).await }
    });
    let accepted: Vec<String> = futures_util::future::join_all(senders).await.concat();
    let mut histories = Vec::new();
    for id in &accepted {
        histories.push(server.wait_for_message_status(id, "read").await);
    }

    // Every event since the jump reads in order, none missing, from where the old ones ended.
    let mut events = Vec::new();
    let mut after = format!("evt_{old_last}");
    loop {
        let (status, page) = server.get(&format!("/v1/events?after={after}&limit=1000")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().unwrap().clone();
        if data.is_empty() {
            break;
        }
        after = page["next_after"].as_str().unwrap().to_owned();
        events.extend(data);
    }
    let seqs: Vec<u64> = events.iter().map(event_seq).collect();
    assert_eq!(seqs, (old_last + 1..old_last + 1 + seqs.len() as u64).collect::<Vec<_>>());
    for message in &histories {
        let id = &message["id"];
        let statuses: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "message.status" && e["data"]["message_id"] == *id)
            .map(|e| e["data"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, history(message), "{message}");
    }
    eventually(|| async {
        for id in &old {
            if status_of(&server, id).await != StatusCode::NOT_FOUND {
                return None;
            }
        }
        Some(())
    })
    .await;
}
