//! Send pacing: the interval between sends, "typing…", and caps that make messages wait.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{history, nz, TestServer};

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time")).expect("RFC 3339").to_utc()
}

/// When a message entered `status`, from its history.
fn entered(message: &Value, status: &str) -> chrono::DateTime<chrono::Utc> {
    let entry = message["status_history"].as_array().unwrap().iter().find(|h| h["status"] == status);
    time(&entry.unwrap_or_else(|| panic!("no {status} in {message}"))["at"])
}

async fn paced_session(server: &TestServer, id: &str, phone: &str, pacing: Value) {
    let body = json!({ "id": id, "connector": "sim", "config": { "pacing": pacing } });
    let (status, created) = server.post("/v1/sessions", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    server.link(id, phone).await;
}

#[tokio::test]
async fn paced_sends_keep_their_interval_and_type_first() {
    let server = TestServer::start().await;
    let pacing =
        json!({ "min_interval_ms": 150, "jitter_ms": 50, "typing_ms_per_char": 10, "typing_max_ms": 80 });
    paced_session(&server, "alice", "15550001111", pacing).await;
    let ids = server.send_texts("alice", "15550002222", "a long enough text ", 4).await;
    let mut sent = Vec::new();
    for id in &ids {
        sent.push(server.wait_until_sent(id).await);
    }
    for pair in sent.windows(2) {
        let gap = (entered(&pair[1], "sending") - entered(&pair[0], "sent")).num_milliseconds();
        assert!(gap >= 150, "sends {gap} ms apart");
    }
    for message in &sent {
        let typing = (entered(message, "sent") - entered(message, "sending")).num_milliseconds();
        assert!(typing >= 80, "typed for {typing} ms");
    }
}

#[tokio::test]
async fn a_daily_cap_makes_messages_wait_and_carries_over_a_restart() {
    // The window outlasts a restart on a loaded machine, so the third message must wait.
    let mut server = TestServer::start_with(|c| c.pacing.window_ms = nz(6_000)).await;
    paced_session(&server, "alice", "15550001111", json!({ "daily_cap": 2 })).await;
    let first = server.send_texts("alice", "15550002222", "early", 2).await;
    let first_sent = entered(&server.wait_until_sent(&first[0]).await, "sent");
    server.wait_until_sent(&first[1]).await;

    server = server.restart().await;
    server.wait_for_status("alice", "connected").await;
    let late = server.send_text("alice", "15550003333", "over the cap").await;
    let id = late["id"].as_str().unwrap();
    let waiting = crate::common::eventually(|| async {
        let (_, message) = server.get(&format!("/v1/messages/{id}")).await;
        message.get("next_attempt_at").is_some().then_some(message)
    })
    .await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    let next = time(&waiting["next_attempt_at"]);
    assert!((next - first_sent).num_milliseconds() >= 6_000 - 5, "waits for the window: {waiting}");
    let sent = server.wait_until_sent(id).await;
    assert!(entered(&sent, "sending") >= next, "not sent before the cap freed: {sent}");
    assert_eq!(history(&sent)[..3], ["queued", "sending", "sent"], "waiting is not a status change");
}

#[tokio::test]
async fn a_per_recipient_limit_holds_only_that_recipient() {
    let server = TestServer::start_with(|c| c.pacing.window_ms = nz(60_000)).await;
    paced_session(&server, "alice", "15550001111", json!({ "per_recipient_limit": 1 })).await;
    let to_bob = server.send_texts("alice", "15550002222", "bob", 2).await;
    let to_carol = server.send_text("alice", "15550003333", "carol").await;
    server.wait_until_sent(&to_bob[0]).await;
    server.wait_until_sent(to_carol["id"].as_str().unwrap()).await;
    let (_, second) = server.get(&format!("/v1/messages/{}", to_bob[1])).await;
    assert_eq!(second["status"], "queued", "{second}");
    assert!(second["next_attempt_at"].is_string(), "{second}");
}

#[tokio::test]
async fn bad_pacing_is_refused_when_the_session_is_created() {
    let server = TestServer::start().await;
    for pacing in [json!({ "min_interval": 5 }), json!({ "daily_cap": -1 }), json!("fast")] {
        let body = json!({ "id": "alice", "connector": "sim", "config": { "pacing": pacing } });
        let (status, answer) = server.post("/v1/sessions", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{pacing}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], "config.pacing");
    }
}
