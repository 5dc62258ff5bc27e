//! Sending text, receiving it, and reading messages back.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{history, nz, TestServer};

#[tokio::test]
async fn text_goes_from_queued_to_read_and_arrives_at_the_other_session() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;

    let message = server.send_text("alice", "+1 (555) 000-2222", "Hi Bob").await;
    let id = message["id"].as_str().unwrap();
    assert!(id.starts_with("msg_"));
    assert_eq!(message["status"], "queued");
    assert_eq!(message["to"], "15550002222@s.whatsapp.net");
    assert_eq!(message["text"]["body"], "Hi Bob");

    let read = server.wait_for_message_status(id, "read").await;
    assert_eq!(history(&read), ["queued", "sending", "sent", "delivered", "read"]);
    assert_eq!(read["from"], "15550001111@s.whatsapp.net");

    let inbound = server.messages("bob", "in").await;
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0]["text"]["body"], "Hi Bob");
    assert_eq!(inbound[0]["from"], "15550001111@s.whatsapp.net");
    assert_eq!(inbound[0]["chat"], "15550001111@s.whatsapp.net");
    assert_eq!(inbound[0]["status"], "received");
    assert_eq!(inbound[0]["wa_id"], read["wa_id"], "both ends know the message by one WhatsApp id");
}

#[tokio::test]
async fn text_to_a_virtual_contact_is_delivered_then_read() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let message = server.send_text("alice", "15557770001", "Hello").await;
    let read = server.wait_for_message_status(message["id"].as_str().unwrap(), "read").await;
    assert_eq!(history(&read), ["queued", "sending", "sent", "delivered", "read"]);
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = read["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| chrono::DateTime::parse_from_rfc3339(h["at"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[tokio::test]
async fn wait_true_answers_with_the_send_result() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let (status, message) = server
        .post(
            "/v1/sessions/alice/messages?wait=true",
            json!({ "to": "15557770001", "type": "text", "text": { "body": "now" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{message}");
    assert!(["sent", "delivered", "read"].contains(&message["status"].as_str().unwrap()), "{message}");
    assert!(message["wa_id"].is_string());

    let (status, message) = server
        .post(
            "/v1/sessions/alice/messages?wait=true",
            json!({ "to": "15559990000", "type": "text", "text": { "body": "?" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(message["status"], "failed");
    assert_eq!(message["status_reason"], "recipient_not_on_whatsapp");
}

#[tokio::test]
async fn wait_true_times_out_with_504_and_the_message_stays_queued() {
    let server = TestServer::start_with(|c| c.api.wait_timeout_ms = 100).await;
    server.create_session("alice").await;
    let (status, body) = server
        .post(
            "/v1/sessions/alice/messages?wait=true",
            json!({ "to": "15557770001", "type": "text", "text": { "body": "later" } }),
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["error"]["code"], "wait_timeout");
    let id = body["error"]["details"]["message"]["id"].as_str().unwrap().to_owned();
    assert_eq!(server.get(&format!("/v1/messages/{id}")).await.1["status"], "queued");
    // Linking the session sends it.
    server.link("alice", "15550001111").await;
    server.wait_for_message_status(&id, "read").await;
}

#[tokio::test]
async fn numbers_not_on_whatsapp_fail_with_a_reason() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let message = server.send_text("alice", "15559990000", "anyone?").await;
    let failed = server.wait_for_message_status(message["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["status_reason"], "recipient_not_on_whatsapp");
    assert_eq!(history(&failed), ["queued", "sending", "failed"]);
}

#[tokio::test]
async fn an_inbound_message_is_stored_once() {
    let server = TestServer::start().await;
    server.link("bob", "15550002222").await;
    let inbound = json!({ "session_id": "bob", "from": "+44 7700 900123", "id": "WAMID-1", "type": "text", "text": { "body": "hello" } });
    for _ in 0..2 {
        let (status, body) = server.post("/v1/sim/inbound", inbound.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "stored");
    }
    let messages = server.messages("bob", "in").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["from"], "447700900123@s.whatsapp.net");
    assert_eq!(messages[0]["wa_id"], "WAMID-1");
    let received: Vec<Value> =
        server.all_events().await.into_iter().filter(|e| e["type"] == "message.received").collect();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["data"]["text"]["body"], "hello");
    assert_eq!(received[0]["data"]["id"], messages[0]["id"]);

    // Without an id every injection is a new message.
    let (_, first) = server.post("/v1/sim/inbound", json!({ "session_id": "bob", "from": "447700900123", "type": "text", "text": { "body": "again" } })).await;
    let (_, second) = server.post("/v1/sim/inbound", json!({ "session_id": "bob", "from": "447700900123", "type": "text", "text": { "body": "again" } })).await;
    assert_ne!(first["wa_id"], second["wa_id"]);
    assert_eq!(server.messages("bob", "in").await.len(), 3);
}

#[tokio::test]
async fn inbound_takes_every_kind_a_phone_sends() {
    let server = TestServer::start().await;
    server.link("bob", "15550002222").await;
    let inbound = |content: Value| {
        let mut body = json!({ "session_id": "bob", "from": "447700900123" });
        body.as_object_mut().unwrap().extend(content.as_object().unwrap().clone());
        server.post("/v1/sim/inbound", body)
    };
    let place = json!({ "latitude": 51.5, "longitude": -0.12, "name": "Big Ben" });
    let (status, body) = inbound(json!({ "type": "location", "location": place })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let image = json!({ "data": crate::common::png_base64(), "caption": "look" });
    let (status, body) = inbound(json!({ "type": "image", "image": image })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let messages = server.messages("bob", "in").await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["location"], place);
    assert_eq!(messages[1]["image"]["caption"], "look");
    assert_eq!(messages[1]["image"]["mime_type"], "image/png");

    for (content, field) in [
        (
            json!({ "type": "location", "location": { "latitude": "north", "longitude": 0 } }),
            "location.latitude",
        ),
        (
            json!({ "type": "poll", "poll": { "question": "?", "options": ["a", "b"], "colour": 1 } }),
            "poll.colour",
        ),
        (json!({ "type": "template", "template": { "name": "x" } }), "template"),
        (json!({ "type": "pigeon" }), "type"),
    ] {
        let (status, error) = inbound(content.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{content}: {error}");
        assert_eq!(error["error"]["details"]["field"], field, "{content}: {error}");
    }
    assert_eq!(server.messages("bob", "in").await.len(), 2, "nothing more was stored");
}

#[tokio::test]
async fn inbound_to_an_unlinked_session_is_refused() {
    let server = TestServer::start().await;
    server.create_session("bob").await;
    let (status, body) = server
        .post(
            "/v1/sim/inbound",
            json!({ "session_id": "bob", "from": "447700900123", "type": "text", "text": { "body": "hi" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "session_not_linked");
    let (status, _) = server
        .post("/v1/sim/inbound", json!({ "session_id": "ghost", "from": "447700900123", "type": "text", "text": { "body": "hi" } }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_lists_newest_first_with_cursor_and_filters() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let mut sent = server.send_texts("alice", "15557770001", "a", 5).await;
    sent.extend(server.send_texts("alice", "15557770002", "b", 3).await);
    server.post("/v1/sim/inbound", json!({ "session_id": "alice", "from": "15557770001", "type": "text", "text": { "body": "reply" } })).await;

    // Page through everything, three at a time.
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let (status, page) = server.get(&format!("/v1/sessions/alice/messages?limit=3{before}")).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(page["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match page["next_before"].as_str() {
            Some(cursor) => before = format!("&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9);
    let mut newest_first = seen.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first);
    let outbound: HashSet<&String> = seen[1..].iter().collect();
    assert_eq!(outbound, sent.iter().collect(), "the newest is the inbound reply");

    let (_, chat) = server.get("/v1/sessions/alice/messages?chat=%2B1%20555%20777%200001").await;
    let bodies: Vec<&str> =
        chat["data"].as_array().unwrap().iter().map(|m| m["text"]["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["reply", "a4", "a3", "a2", "a1", "a0"]);
    let (_, inbound) = server.get("/v1/sessions/alice/messages?direction=in").await;
    assert_eq!(inbound["data"].as_array().unwrap().len(), 1);
    let (_, outbound) = server.get("/v1/sessions/alice/messages?direction=out&chat=15557770002").await;
    assert_eq!(outbound["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_idempotency_key_sends_once() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let send = |key: &'static str| {
        server
            .request(Method::POST, "/v1/sessions/alice/messages")
            .header("Idempotency-Key", key)
            .json(&json!({ "to": "15550002222", "type": "text", "text": { "body": "once" } }))
    };
    let first = send("order-42").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    server.wait_for_message_status(first["id"].as_str().unwrap(), "read").await;

    let again = send("order-42").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["status"], "read", "the repeat returns the message as it is now");

    let other: Value = send("order-43").send().await.unwrap().json().await.unwrap();
    assert_ne!(other["id"], first["id"]);
    server.wait_for_message_status(other["id"].as_str().unwrap(), "read").await;
    assert_eq!(server.messages("bob", "in").await.len(), 2);
    assert_eq!(server.messages("alice", "out").await.len(), 2);
}

#[tokio::test]
async fn a_dropped_connection_reconnects_and_queued_messages_go() {
    let server = TestServer::start_with(|c| c.engine.reconnect_min_ms = 200).await;
    server.link("alice", "15550001111").await;
    let (status, _) =
        server.post("/v1/sim/faults", json!({ "session_id": "alice", "drop_connection": true })).await;
    assert_eq!(status, StatusCode::OK);
    server.wait_for_status("alice", "disconnected").await;
    let message = server.send_text("alice", "15557770001", "during the outage").await;
    server.wait_for_status("alice", "connected").await;
    server.wait_for_message_status(message["id"].as_str().unwrap(), "read").await;
    let statuses: Vec<String> = server
        .all_events()
        .await
        .iter()
        .filter(|e| e["type"] == "session.status" && e["session_id"] == "alice")
        .map(|e| e["data"]["status"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        statuses.ends_with(&[
            "connected".into(),
            "disconnected".into(),
            "connecting".into(),
            "connected".into()
        ]),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn failed_sends_are_retried_then_given_up() {
    let server = TestServer::start_with(|c| c.engine.send_max_attempts = nz(3)).await;
    server.link("alice", "15550001111").await;
    server.post("/v1/sim/faults", json!({ "session_id": "alice", "fail_sends": 2 })).await;
    let retried = server.send_text("alice", "15557770001", "third time lucky").await;
    let sent = server.wait_for_message_status(retried["id"].as_str().unwrap(), "read").await;
    assert_eq!(
        history(&sent),
        ["queued", "sending", "queued", "sending", "queued", "sending", "sent", "delivered", "read"]
    );

    server.post("/v1/sim/faults", json!({ "session_id": "alice", "fail_sends": 3 })).await;
    let doomed = server.send_text("alice", "15557770001", "never").await;
    let failed = server.wait_for_message_status(doomed["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["status_reason"], "send_failed: simulated send failure");
    assert_eq!(history(&failed), ["queued", "sending", "queued", "sending", "queued", "sending", "failed"]);
}

#[tokio::test]
async fn a_shutdown_answers_waiting_sends_with_the_queued_message() {
    let mut server = TestServer::start_with(|c| c.api.wait_timeout_ms = 60_000).await;
    server.create_session("alice").await;
    let request = server
        .request(Method::POST, "/v1/sessions/alice/messages?wait=true")
        .json(&json!({ "to": "15557770001", "type": "text", "text": { "body": "later" } }));
    let waiting = tokio::spawn(async move { request.send().await.unwrap() });
    // Wait until the message is accepted, then stop the server under the waiting request.
    crate::common::eventually(|| async { (!server.messages("alice", "out").await.is_empty()).then_some(()) })
        .await;
    server.stop().await;
    let response = waiting.await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["status"], "queued");
}
