//! Webhooks: signed deliveries, retries on a schedule, nothing lost to a dead receiver or a
//! crash, replay, secret rotation, disabling, and refusal of private targets.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{eventually, fast_config, nz, TestData, TestServer};
use crate::receiver::{Answer, Receiver};

/// alice (15550001111) and bob (15550002222), both linked.
async fn two_sessions(server: &TestServer) {
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
}

fn verify(secret: &str, hit: &crate::receiver::Hit) {
    let verifier = standardwebhooks::Webhook::new(secret).expect("secret in the whsec_ format");
    verifier.verify(&hit.body, &hit.headers).expect("signature verifies");
}

#[tokio::test]
async fn deliveries_are_signed_per_standard_webhooks_and_filtered() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (webhook, secret) = server.create_webhook(&receiver.url, json!(["message.*"])).await;
    assert!(secret.starts_with("whsec_"));
    two_sessions(&server).await;
    let sent = server.send_text("alice", "15550002222", "hello bob").await;
    let id = sent["id"].as_str().unwrap();
    server.wait_for_message_status(id, "read").await;

    // queued, sending, sent, delivered, read for alice's message, and bob's message.received.
    let hits = receiver.wait_for(6).await;
    for hit in &hits {
        verify(&secret, hit);
        assert_eq!(hit.header("content-type"), "application/json");
        let event = hit.event();
        assert_eq!(hit.header("webhook-id"), event["id"], "webhook-id is the event id");
        assert!(event["type"].as_str().unwrap().starts_with("message."), "{event}");
    }
    let received: Vec<Value> =
        hits.iter().map(|h| h.event()).filter(|e| e["type"] == "message.received").collect();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["session_id"], "bob");
    assert_eq!(received[0]["data"]["text"]["body"], "hello bob");

    // Tampering with the body breaks the signature.
    let mut forged = hits[0].clone();
    forged.body = axum::body::Bytes::from(forged.body.to_vec().repeat(2));
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    assert!(verifier.verify(&forged.body, &forged.headers).is_err());

    eventually(|| async {
        let delivered = server.deliveries(&webhook, "&status=delivered").await;
        (delivered.len() == hits.len()).then_some(())
    })
    .await;
    let delivery = &server.deliveries(&webhook, "").await[0];
    assert_eq!(delivery["attempt_count"], 1);
    assert_eq!(delivery["attempts"][0]["status_code"], 200);
    assert!(delivery["attempts"][0]["latency_ms"].is_u64());
}

/// The webhook's first delivery, once it has been delivered.
async fn first_delivery_delivered(server: &TestServer, webhook: &str) -> Value {
    eventually(|| async {
        let first = server.deliveries(webhook, "").await.last().cloned()?;
        (first["status"] == "delivered").then_some(first)
    })
    .await
}

#[tokio::test]
async fn a_failed_attempt_is_retried_on_the_schedule() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.answer_next(&[Answer::Body(500, 10_000)]);
    let (webhook, _) = server.create_webhook(&receiver.url, json!(["session.status"])).await;
    server.create_session("alice").await;

    let hits = receiver.wait_for(2).await;
    assert_eq!(hits[0].header("webhook-id"), hits[1].header("webhook-id"), "the same event, again");
    let delivery = first_delivery_delivered(&server, &webhook).await;
    assert_eq!(delivery["attempt_count"], 2);
    let codes: Vec<&Value> =
        delivery["attempts"].as_array().unwrap().iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [&json!(500), &json!(200)]);
    assert_eq!(delivery["attempts"][0]["error"], "the receiver answered 500 Internal Server Error");
    // The first 4 KiB of the answer is kept, less the character the cut went through.
    let kept = delivery["attempts"][0]["response_body"].as_str().unwrap();
    assert_eq!(kept.len(), 4095);
    assert!(kept.starts_with('x') && kept[1..].chars().all(|c| c == 'é'), "{kept}");
}

#[tokio::test]
async fn an_answer_with_a_nul_byte_is_recorded_and_the_delivery_goes_on() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.answer_next(&[Answer::Text(500, "bad\0answer")]);
    let (webhook, _) = server.create_webhook(&receiver.url, json!(["session.status"])).await;
    server.create_session("alice").await;

    receiver.wait_for(2).await;
    let delivery = first_delivery_delivered(&server, &webhook).await;
    assert_eq!(delivery["attempt_count"], 2);
    // PostgreSQL cannot store a NUL in text: it shows as a replacement character.
    assert_eq!(delivery["attempts"][0]["response_body"], "bad\u{FFFD}answer");
}

#[tokio::test]
async fn a_delivery_that_exhausts_its_schedule_fails_and_can_be_retried_by_hand() {
    let server = TestServer::start_with(|c| c.webhooks.retry_schedule_ms = vec![10, 10]).await;
    let receiver = Receiver::start().await;
    receiver.answer_always(Answer::Status(503));
    let (webhook, _) = server.create_webhook(&receiver.url, json!(["session.status"])).await;
    server.create_session("alice").await;

    let failed = eventually(|| async { server.deliveries(&webhook, "&status=failed").await.pop() }).await;
    assert_eq!(failed["attempt_count"], 3, "the first attempt and two retries");
    assert_eq!(failed["next_attempt_at"], Value::Null);
    assert_eq!(receiver.hits().len(), 3);

    receiver.answer_always(Answer::Status(204));
    let id = failed["id"].as_str().unwrap();
    let (status, body) =
        server.post(&format!("/v1/webhooks/{webhook}/deliveries/{id}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let delivered = eventually(|| async {
        let (_, d) = server.get(&format!("/v1/webhooks/{webhook}/deliveries/{id}")).await;
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    assert_eq!(delivered["attempt_count"], 4);

    let (status, body) =
        server.post(&format!("/v1/webhooks/{webhook}/deliveries/dlv_9999/retry"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "delivery_not_found");
}

/// The worker is woken by new events, not only by its poll: with both polls (the webhook
/// worker's and the live feed's) an hour apart, a message's events still reach the webhook.
#[tokio::test]
async fn a_delivery_starts_when_its_event_is_numbered_not_at_the_next_poll() {
    let server = TestServer::start_with(|c| {
        c.webhooks.poll_interval_ms = nz(3_600_000);
        c.events.poll_interval_ms = nz(3_600_000);
    })
    .await;
    let receiver = Receiver::start().await;
    server.create_webhook(&receiver.url, json!(["message.received"])).await;
    two_sessions(&server).await;
    server.send_text("alice", "15550002222", "woken").await;
    let hits = receiver.wait_for(1).await;
    assert_eq!(hits[0].event()["data"]["text"]["body"], "woken");
}

#[tokio::test]
async fn nothing_is_lost_while_the_receiver_is_down() {
    // Retries every 50 ms for long enough to outlast the outage.
    let server = TestServer::start_with(|c| c.webhooks.retry_schedule_ms = vec![50; 400]).await;
    let receiver = Receiver::down().await;
    server.create_webhook(&receiver.url, json!(["message.received"])).await;
    two_sessions(&server).await;
    let ids = server.send_texts("alice", "15550002222", "m", 1000).await;
    eventually(|| async {
        let (_, last) = server.get(&format!("/v1/messages/{}", ids.last().unwrap())).await;
        (last["status"] == "read").then_some(())
    })
    .await;
    assert!(receiver.hits().is_empty());

    receiver.up().await;
    let hits = receiver.wait_for(1000).await;
    let bodies: BTreeSet<String> =
        hits.iter().map(|h| h.event()["data"]["text"]["body"].as_str().unwrap().to_owned()).collect();
    let expected: BTreeSet<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies, expected, "every message.received arrived");
}

#[tokio::test]
async fn a_retry_pending_when_the_server_is_killed_completes_after_restart() {
    let dir = TestData::new().await;
    let mut config = fast_config(&dir);
    config.webhooks.retry_schedule_ms = vec![1_000];
    let receiver = Receiver::start().await;
    receiver.answer_next(&[Answer::Status(500)]);
    let server = TestServer::start_killable(Arc::clone(&dir), config);
    let (webhook, secret) = server.create_webhook(&receiver.url, json!(["session.status"])).await;
    server.create_session("alice").await;
    // Killed once the failed attempt is recorded and its retry is pending.
    eventually(|| async {
        let pending = server.deliveries(&webhook, "&status=pending").await.pop()?;
        (pending["attempt_count"] == 1).then_some(())
    })
    .await;
    let (dir, config) = server.kill();

    // The retry was due a second after the failure; the server was not running then.
    let server = TestServer::start_in(dir, config).await;
    let hits = receiver.wait_for(2).await;
    assert_eq!(hits[0].header("webhook-id"), hits[1].header("webhook-id"));
    verify(&secret, &hits[1]);
    let delivery = eventually(|| async {
        let d = server.deliveries(&webhook, "&status=delivered").await.pop()?;
        Some(d)
    })
    .await;
    assert_eq!(delivery["attempt_count"], 2);
}

#[tokio::test]
async fn an_attempt_cut_short_by_a_kill_is_made_again_after_restart() {
    let dir = TestData::new().await;
    let mut config = fast_config(&dir);
    // The lease of a claimed delivery is a few timeouts long.
    config.webhooks.timeout_ms = nz(200);
    let receiver = Receiver::start().await;
    receiver.answer_next(&[Answer::Hang]);
    let server = TestServer::start_killable(Arc::clone(&dir), config);
    let (webhook, _) = server.create_webhook(&receiver.url, json!(["session.status"])).await;
    server.create_session("alice").await;
    receiver.wait_for(1).await;
    let (dir, config) = server.kill();

    let server = TestServer::start_in(dir, config).await;
    let hits = receiver.wait_for(2).await;
    assert_eq!(hits[0].header("webhook-id"), hits[1].header("webhook-id"));
    let delivery =
        eventually(|| async { server.deliveries(&webhook, "&status=delivered").await.pop() }).await;
    assert_eq!(delivery["attempt_count"], 1, "the killed attempt was never recorded");
}

#[tokio::test]
async fn replay_resends_exactly_the_asked_range() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (webhook, _) = server.create_webhook(&receiver.url, json!(["session.*"])).await;
    for id in ["a", "b", "c", "d"] {
        server.create_session(id).await;
    }
    let hits = receiver.wait_for(4).await;
    let mut ids: Vec<String> = hits.iter().map(|h| h.header("webhook-id").to_owned()).collect();
    ids.sort();
    // Only session.* events: the b and c creations.
    let (status, body) = server
        .post(&format!("/v1/webhooks/{webhook}/replay"), json!({ "since": ids[1], "until": ids[2] }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({ "queued": 2, "first_event_id": ids[1], "last_event_id": ids[2] }));
    let hits = receiver.wait_for(6).await;
    let replayed: Vec<&str> = hits[4..].iter().map(|h| h.header("webhook-id")).collect();
    let mut sorted = replayed.clone();
    sorted.sort();
    assert_eq!(sorted, [ids[1].as_str(), ids[2].as_str()]);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(receiver.hits().len(), 6, "nothing outside the range");

    // A time works as well as an id; "since" alone runs to the newest event.
    let (status, body) = server
        .post(&format!("/v1/webhooks/{webhook}/replay"), json!({ "since": "2000-01-01T00:00:00Z" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["queued"], 4);
    receiver.wait_for(10).await;

    for (bad, field) in [(json!({ "since": "yesterday" }), "since"), (json!({ "since": "evt_x" }), "since")] {
        let (status, body) = server.post(&format!("/v1/webhooks/{webhook}/replay"), bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["details"]["field"], field);
    }
}

#[tokio::test]
async fn webhooks_are_managed_and_secrets_rotate_with_overlap() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (webhook, old_secret) = server.create_webhook(&receiver.url, json!(["session.status"])).await;

    let (status, body) = server.get(&format!("/v1/webhooks/{webhook}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["url"], receiver.url);
    assert_eq!(body["enabled"], true);
    assert!(body.get("secret").is_none(), "the secret is shown only on create and rotate");
    let (_, list) = server.get("/v1/webhooks").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let (status, rotated) = server.post(&format!("/v1/webhooks/{webhook}/rotate-secret"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert!(rotated["previous_secret_expires_at"].is_string());

    server.create_session("alice").await;
    let hit = &receiver.wait_for(1).await[0];
    assert_eq!(hit.header("webhook-signature").split(' ').count(), 2, "both secrets sign");
    verify(&new_secret, hit);
    verify(&old_secret, hit);

    // Filters and enabled can change; a disabled webhook receives nothing.
    let (status, body) = server
        .patch(&format!("/v1/webhooks/{webhook}"), json!({ "enabled": false, "description": "paused" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["enabled"].clone(), body["description"].clone()), (json!(false), json!("paused")));
    server.create_session("bob").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(receiver.hits().len(), 1);
    let (status, body) =
        server.patch(&format!("/v1/webhooks/{webhook}"), json!({ "events": ["nope.*"] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, _) = server.call(server.request(Method::DELETE, &format!("/v1/webhooks/{webhook}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get(&format!("/v1/webhooks/{webhook}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "webhook_not_found");
}

#[tokio::test]
async fn a_webhook_failing_for_too_long_is_disabled_with_an_event() {
    let server = TestServer::start_with(|c| {
        c.webhooks.retry_schedule_ms = vec![30; 100];
        c.webhooks.disable_after_ms = 300;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.answer_always(Answer::Status(500));
    let (webhook, _) = server.create_webhook(&receiver.url, json!(["*"])).await;
    server.create_session("alice").await;

    let disabled = eventually(|| async {
        let (_, body) = server.get(&format!("/v1/webhooks/{webhook}")).await;
        (body["enabled"] == false).then_some(body)
    })
    .await;
    assert!(disabled["disabled_reason"].as_str().unwrap().contains("failed"), "{disabled}");
    let events = server.all_events().await;
    let event = events.iter().find(|e| e["type"] == "webhook.disabled").expect("webhook.disabled event");
    assert_eq!(event["data"]["webhook_id"], webhook);
    assert_eq!(event["session_id"], Value::Null);

    // Enabling it again resumes its pending deliveries.
    receiver.answer_always(Answer::Status(200));
    server.patch(&format!("/v1/webhooks/{webhook}"), json!({ "enabled": true })).await;
    eventually(|| async {
        let delivered = server.deliveries(&webhook, "&status=delivered").await;
        (!delivered.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn one_dead_receiver_does_not_hold_up_another() {
    let server = TestServer::start_with(|c| {
        c.webhooks.max_in_flight = nz(4);
        // The dead receiver's attempts stay open for the whole test, however slow the machine:
        // a timed-out attempt would free its slot for a retry and count twice.
        c.webhooks.timeout_ms = nz(120_000);
    })
    .await;
    let dead = Receiver::start().await;
    dead.answer_always(Answer::Hang);
    let alive = Receiver::start().await;
    server.create_webhook(&dead.url, json!(["*"])).await;
    server.create_webhook(&alive.url, json!(["*"])).await;
    for i in 0..30 {
        server.create_session(&format!("s{i}")).await;
    }
    alive.wait_for(30).await;
    assert_eq!(dead.hits().len(), 4, "at most max_in_flight attempts open to the dead receiver");
    assert_eq!(dead.most_in_flight(), 4);
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let server = TestServer::start_with(|c| c.webhooks.allow_private_targets = false).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/",
        "http://10.0.0.7/",
        "http://[::1]/",
        "http://169.254.169.254/",
    ] {
        let (status, body) = server.post("/v1/webhooks", json!({ "url": url })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["error"]["code"], "private_target", "{url}");
        assert_eq!(body["error"]["details"]["field"], "url");
    }
    let (status, body) = server.post("/v1/webhooks", json!({ "url": "http://no-such-host.invalid/" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "unresolvable_target");
    let (_, list) = server.get("/v1/webhooks").await;
    assert_eq!(list["data"], json!([]), "nothing was written");

    for (body, field) in [
        (json!({ "url": "ftp://example.com/" }), "url"),
        (json!({ "url": "https://example.com/", "events": [] }), "events"),
        (json!({ "url": "https://example.com/", "events": ["mesage.*"] }), "events"),
        (json!({ "url": "https://example.com/", "session_id": "Not Valid" }), "session_id"),
    ] {
        let (status, answer) = server.post("/v1/webhooks", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn a_private_target_kept_from_before_is_not_called_once_refused() {
    let mut server = TestServer::start_with(|c| c.webhooks.retry_schedule_ms = vec![]).await;
    let receiver = Receiver::start().await;
    let (webhook, _) = server.create_webhook(&receiver.url, json!(["session.status"])).await;
    server.stop().await;
    let mut config = server.config.clone();
    config.webhooks.allow_private_targets = false;
    let server = TestServer::start_in(Arc::clone(&server.dir), config).await;
    server.create_session("alice").await;

    let failed = eventually(|| async { server.deliveries(&webhook, "&status=failed").await.pop() }).await;
    assert!(failed["attempts"][0]["error"].as_str().unwrap().contains("private"), "{failed}");
    assert!(receiver.hits().is_empty());
}
