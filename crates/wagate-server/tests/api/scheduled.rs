//! Scheduled sends: sent at their time, across restarts, and cancelable until then.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{history, TestServer};

fn at(offset_ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms)).to_rfc3339()
}

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time")).expect("RFC 3339").to_utc()
}

async fn schedule(server: &TestServer, body: &str, when: &str, query: &str) -> (StatusCode, Value) {
    server
        .post(
            &format!("/v1/sessions/alice/messages{query}"),
            json!({ "to": "15550002222", "type": "text", "text": { "body": body }, "scheduled_at": when }),
        )
        .await
}

#[tokio::test]
async fn a_scheduled_send_goes_at_its_time_even_across_a_restart() {
    let mut server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let (status, message) = schedule(&server, "later", &at(1_500), "?wait=true").await;
    assert_eq!(status, StatusCode::ACCEPTED, "a scheduled send is not waited for: {message}");
    assert_eq!(message["status"], "scheduled");
    let id = message["id"].as_str().unwrap().to_owned();
    let due = time(&message["scheduled_at"]);

    server = server.restart().await;
    assert_eq!(server.get(&format!("/v1/messages/{id}")).await.1["status"], "scheduled");
    let read = server.wait_for_message_status(&id, "read").await;
    assert_eq!(history(&read), ["scheduled", "sending", "sent", "delivered", "read"]);
    let sending =
        read["status_history"].as_array().unwrap().iter().find(|h| h["status"] == "sending").unwrap();
    let late = (time(&sending["at"]) - due).num_milliseconds();
    assert!((0..1_000).contains(&late), "sent {late} ms after its time");
    let received = server.messages("bob", "in").await;
    assert_eq!(received.iter().filter(|m| m["text"]["body"] == "later").count(), 1, "sent once");
}

#[tokio::test]
async fn a_scheduled_send_can_be_canceled_until_it_goes() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let (status, message) = schedule(&server, "never", &at(3_600_000), "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{message}");
    let id = message["id"].as_str().unwrap();

    let (status, canceled) = server.call(server.request(Method::DELETE, &format!("/v1/messages/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    let (_, stored) = server.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(history(&stored), ["scheduled", "canceled"]);
    let statuses: Vec<Value> = server
        .all_events()
        .await
        .into_iter()
        .filter(|e| e["data"]["message_id"] == id)
        .map(|e| e["data"]["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("scheduled"), json!("canceled")]);

    let (status, body) = server.call(server.request(Method::DELETE, &format!("/v1/messages/{id}"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "message_not_scheduled");
    // A time already past sends at once; a sent message cannot be canceled.
    let (_, now) = schedule(&server, "now", &at(-60_000), "?wait=true").await;
    // Answered once sent; by the time it is read back the recipient may have it already.
    assert!(history(&now).contains(&"sent".to_owned()), "{now}");
    let (status, _) = server
        .call(server.request(Method::DELETE, &format!("/v1/messages/{}", now["id"].as_str().unwrap())))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) =
        server.call(server.request(Method::DELETE, "/v1/messages/msg_01M81C6845BR4BRK3Y7F25R2VB")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for bad in ["tomorrow", "2026-13-01T00:00:00Z", &at(400 * 86_400_000)] {
        let (status, body) = schedule(&server, "bad", bad, "").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["details"]["field"], "scheduled_at");
    }
}
