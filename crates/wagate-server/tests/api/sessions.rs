//! Creating sessions and linking them by QR code or pairing code.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{eventually, nz, TestServer};

#[tokio::test]
async fn two_sessions_link_by_qr_code() {
    let server = TestServer::start().await;
    for id in ["alice", "bob"] {
        let session = server.create_session(id).await;
        assert_eq!(session["status"], "created");
        assert_eq!(session["connector"], "sim");
        let (status, session) = server.post(&format!("/v1/sessions/{id}/connect"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(session["status"], "connecting");
    }

    let code = server.wait_for_qr("alice").await;
    assert_eq!(server.wait_for_status("alice", "qr").await["phone"], serde_json::Value::Null);
    let (_, qr) = server.get("/v1/sessions/alice/qr").await;
    assert!(qr["expires_at"].is_string());
    assert!(qr["image"].as_str().unwrap().starts_with("data:image/png;base64,"));
    let png = server.request(Method::GET, "/v1/sessions/alice/qr?format=png").send().await.unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG\r\n"));
    let svg = server.request(Method::GET, "/v1/sessions/alice/qr?format=svg").send().await.unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));

    let (status, linked) =
        server.post("/v1/sim/scan", json!({ "code": code, "phone": "+1 555 000 1111" })).await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    assert_eq!(linked["session_id"], "alice");
    let bob_code = server.wait_for_qr("bob").await;
    server.post("/v1/sim/scan", json!({ "code": bob_code, "phone": "15550002222" })).await;

    let alice = server.wait_for_status("alice", "connected").await;
    assert_eq!(alice["phone"], "15550001111");
    assert_eq!(alice["jid"], "15550001111@s.whatsapp.net");
    assert!(alice["last_connected_at"].is_string());
    assert_eq!(server.wait_for_status("bob", "connected").await["phone"], "15550002222");
    let (status, error) = server.get("/v1/sessions/alice/qr").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "no_qr_code");

    let (_, list) = server.get("/v1/sessions").await;
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alice", "bob"]);

    // The log tells the same story.
    let events = server.all_events().await;
    let alice_statuses: Vec<&str> = events
        .iter()
        .filter(|e| e["session_id"] == "alice" && e["type"] == "session.status")
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(alice_statuses, ["created", "connecting", "qr", "connected"]);
    assert!(events.iter().any(|e| e["type"] == "session.qr" && e["data"]["code"] == code.as_str()));
}

#[tokio::test]
async fn a_phone_links_one_session_only() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.create_session("bob").await;
    server.post("/v1/sessions/bob/connect", json!({})).await;
    let code = server.wait_for_qr("bob").await;
    let (status, error) = server.post("/v1/sim/scan", json!({ "code": code, "phone": "15550001111" })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "phone_in_use");
    let (status, error) =
        server.post("/v1/sim/scan", json!({ "code": "2@nope", "phone": "15550003333" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "code_not_found");
}

#[tokio::test]
async fn qr_codes_rotate_and_linking_gives_up() {
    let server = TestServer::start_with(|c| {
        c.connectors.sim.qr_interval_ms = nz(40);
        c.connectors.sim.qr_max_codes = nz(3);
    })
    .await;
    server.create_session("alice").await;
    server.post("/v1/sessions/alice/connect", json!({})).await;
    let first = server.wait_for_qr("alice").await;
    let session = server.wait_for_status("alice", "disconnected").await;
    assert!(session["status_reason"].as_str().unwrap().contains("timed out"), "{session}");
    let codes: Vec<String> = server
        .all_events()
        .await
        .iter()
        .filter(|e| e["type"] == "session.qr")
        .map(|e| e["data"]["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 3);
    assert_eq!(codes[0], first);
    assert!(codes[0] != codes[1] && codes[1] != codes[2]);
    let (status, _) = server.post("/v1/sim/scan", json!({ "code": first, "phone": "15550001111" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an expired code links nothing");
}

#[tokio::test]
async fn pairing_code_links_the_phone_it_was_asked_for() {
    let server = TestServer::start().await;
    server.create_session("alice").await;
    let (status, _) =
        server.post("/v1/sessions/alice/connect", json!({ "pairing_phone": "+1 555 000 1111" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = eventually(|| async {
        let (_, body) = server.get("/v1/sessions/alice/qr").await;
        body["pairing_code"].as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(code.len(), 8);
    assert_eq!(server.wait_for_status("alice", "pairing_code").await["status"], "pairing_code");
    let (status, _) = server.post("/v1/sim/pair", json!({ "code": code, "phone": "15550009999" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = server.post("/v1/sim/pair", json!({ "code": code, "phone": "15550001111" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.wait_for_status("alice", "connected").await["phone"], "15550001111");
}

#[tokio::test]
async fn disconnect_keeps_the_link_and_logout_ends_it() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let (status, _) = server.post("/v1/sessions/alice/connect", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "already connected");

    let (status, session) = server.post("/v1/sessions/alice/disconnect", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["status"], "disconnected");
    let (status, _) = server.post("/v1/sessions/alice/disconnect", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "already disconnected");

    // A linked device reconnects without a new QR code.
    server.post("/v1/sessions/alice/connect", json!({})).await;
    assert_eq!(server.wait_for_status("alice", "connected").await["phone"], "15550001111");

    let (status, session) = server.post("/v1/sessions/alice/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["status"], "logged_out");
    assert_eq!(session["phone"], serde_json::Value::Null);
    let (status, _) = server.post("/v1/sessions/alice/logout", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Logged out means a new QR code.
    server.post("/v1/sessions/alice/connect", json!({})).await;
    server.wait_for_qr("alice").await;
    assert_eq!(server.wait_for_status("alice", "qr").await["status"], "qr");
}

#[tokio::test]
async fn delete_removes_the_session_and_its_messages() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let message = server.send_text("alice", "15557770001", "bye").await;
    let (status, _) = server.call(server.request(Method::DELETE, "/v1/sessions/alice")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/v1/sessions/alice").await.0, StatusCode::NOT_FOUND);
    let id = message["id"].as_str().unwrap();
    assert_eq!(server.get(&format!("/v1/messages/{id}")).await.0, StatusCode::NOT_FOUND);
    let (status, _) = server.call(server.request(Method::DELETE, "/v1/sessions/alice")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The id is free again, and the phone too.
    server.link("alice", "15550001111").await;
}

#[tokio::test]
async fn generated_admin_key_is_kept_in_the_data_dir() {
    let mut server = TestServer::start_with(|c| c.admin_key = None).await;
    let key = server.server().admin_key().to_owned();
    assert!(key.starts_with("wg_"));
    let stored = std::fs::read_to_string(server.dir.path().join("admin.key")).unwrap();
    assert_eq!(stored.trim(), key);
    assert_eq!(server.get("/v1/sessions").await.0, StatusCode::OK);
    server = server.restart().await;
    assert_eq!(server.server().admin_key(), key, "the same key after a restart");
    server.stop().await;
}

#[tokio::test]
async fn a_connection_the_network_refuses_leaves_the_session_failed() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.create_session("bob").await;
    let (status, _) =
        server.post("/v1/sessions/bob/connect", json!({ "pairing_phone": "15550001111" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let bob = server.wait_for_status("bob", "failed").await;
    assert!(bob["status_reason"].as_str().unwrap().contains("linked to session alice"), "{bob}");
    // A failed session can be connected again.
    server.link("bob", "15550002222").await;
}

#[tokio::test]
async fn a_phone_is_free_again_after_its_offline_session_is_deleted_or_logged_out() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.post("/v1/sessions/alice/disconnect", json!({})).await;
    let (status, _) = server.call(server.request(Method::DELETE, "/v1/sessions/alice")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.link("carol", "15550001111").await;

    server.post("/v1/sessions/carol/disconnect", json!({})).await;
    let (status, session) = server.post("/v1/sessions/carol/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["status"], "logged_out");
    server.link("dave", "15550001111").await;
}

#[tokio::test]
async fn concurrent_connects_start_one_connection() {
    let server = TestServer::start().await;
    server.create_session("alice").await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = server.request(Method::POST, "/v1/sessions/alice/connect");
        requests.spawn(async move { request.send().await.unwrap().status() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = requests.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::ACCEPTED || *s == StatusCode::CONFLICT));
    server.wait_for_qr("alice").await;
    let connecting = server
        .all_events()
        .await
        .iter()
        .filter(|e| e["session_id"] == "alice" && e["data"]["status"] == "connecting")
        .count();
    assert_eq!(connecting, 1);
}

#[tokio::test]
async fn a_session_deleted_while_waiting_to_reconnect_frees_its_phone() {
    let server = TestServer::start_with(|c| c.engine.reconnect_min_ms = 60_000).await;
    server.link("alice", "15550001111").await;
    server.post("/v1/sim/faults", json!({ "session_id": "alice", "drop_connection": true })).await;
    server.wait_for_status("alice", "disconnected").await;
    let (status, _) = server.call(server.request(Method::DELETE, "/v1/sessions/alice")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.link("bob", "15550001111").await;
}
