//! Number checks, contacts and chats: what a session knows of who it talks to.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{eventually, TestServer};

#[tokio::test]
async fn a_number_check_answers_in_the_order_asked() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let (status, body) = server
        .post("/v1/sessions/alice/contacts/check", json!({ "phones": ["+1 555 000 2222", "15550000000"] }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!([
            { "phone": "15550002222", "on_whatsapp": true, "jid": "15550002222@s.whatsapp.net" },
            { "phone": "15550000000", "on_whatsapp": false },
        ])
    );
}

#[tokio::test]
async fn a_number_check_needs_good_numbers_and_a_connected_session() {
    let server = TestServer::start().await;
    server.create_session("idle").await;
    server.link("alice", "15550001111").await;
    let check = |session: &'static str, phones: serde_json::Value| {
        let server = &server;
        async move {
            server.post(&format!("/v1/sessions/{session}/contacts/check"), json!({ "phones": phones })).await
        }
    };
    let (status, body) = check("alice", json!(["15550002222", "12"])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );
    assert_eq!(body["error"]["details"]["field"], "phones[1]", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("phones[1]"), "{body}");
    let (status, body) = check("alice", json!([])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );
    assert_eq!(body["error"]["details"]["field"], "phones", "{body}");
    let too_many: Vec<String> = (0..501).map(|i| format!("1555{i:07}")).collect();
    let (status, _) = check("alice", json!(too_many)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = check("idle", json!(["15550002222"])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("session_not_connected"))
    );
    // Connecting but not linked: the session's state, not WhatsApp's silence (503).
    server.post("/v1/sessions/idle/connect", json!({})).await;
    server.wait_for_qr("idle").await;
    let (status, body) = check("idle", json!(["15550002222"])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("session_not_connected")),
        "{body}"
    );
    let (status, body) = check("nobody", json!(["15550002222"])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("session_not_found")));
}

#[tokio::test]
async fn received_messages_teach_contacts_and_chats() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    server.send_text("bob", "15550001111", "hi alice").await;
    eventually(|| async { (server.messages("alice", "in").await.len() == 1).then_some(()) }).await;
    let (status, body) = server
        .post(
            "/v1/sim/inbound",
            json!({ "session_id": "alice", "from": "15550003333", "type": "text", "text": { "body": "from carol" } }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let chats = eventually(|| async {
        let (_, body) = server.get("/v1/sessions/alice/chats").await;
        (body["data"].as_array().map_or(0, Vec::len) == 2).then_some(body["data"].clone())
    })
    .await;
    let jids: Vec<&str> = chats.as_array().unwrap().iter().map(|c| c["jid"].as_str().unwrap()).collect();
    assert_eq!(jids, ["15550003333@s.whatsapp.net", "15550002222@s.whatsapp.net"], "most recent first");
    assert_eq!(chats[0]["is_group"], false);
    assert!(chats[0]["last_message_at"].is_string());

    let (status, body) = server.get("/v1/sessions/alice/contacts?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["jid"], "15550002222@s.whatsapp.net");
    assert_eq!(body["data"][0]["phone"], "15550002222");
    let after = body["next_after"].as_str().unwrap().to_owned();
    let (_, rest) = server.get(&format!("/v1/sessions/alice/contacts?after={after}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["jid"], "15550003333@s.whatsapp.net");
    assert!(rest["next_after"].is_null());
    // Bob sent nothing to anyone who wrote back: he knows no one yet.
    let (_, bob) = server.get("/v1/sessions/bob/contacts").await;
    assert_eq!(bob["data"], json!([]));

    let (status, body) = server.get("/v1/sessions/alice/chats?limit=0").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );
    assert_eq!(body["error"]["details"]["field"], "limit", "{body}");
    let (status, _) = server.get("/v1/sessions/nobody/contacts").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
