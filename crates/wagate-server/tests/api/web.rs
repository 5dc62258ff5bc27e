//! The web connector as far as it can go without WhatsApp's servers: it dials the configured
//! WebSocket URL, and a session's device keys live in wagate's database, survive a restart
//! and go with the session.

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wagate_core::SessionId;

use crate::common::{eventually, TestServer};

/// A TCP listener that records the first bytes of each connection (the WebSocket upgrade
/// request) and hangs up: it stands where WhatsApp's server would.
async fn fake_whatsapp() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws/chat", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = vec![0; 4096];
            let n = socket.read(&mut head).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&head[..n]).into_owned());
        }
    });
    (url, rx)
}

async fn device(server: &TestServer, session: &str) -> Option<Vec<u8>> {
    let id = SessionId::parse(session).unwrap();
    let mut found = server.server().store().get_device_keys(&id, "device", &[""]).await.unwrap();
    found.pop().map(|k| k.value)
}

#[tokio::test]
async fn a_web_session_dials_the_configured_url_and_keeps_its_device_across_restarts() {
    let (url, mut dials) = fake_whatsapp().await;
    let server = TestServer::start_with(|config| {
        config.connectors.web.ws_url = url.clone();
        // A fixed version: nothing is fetched from web.whatsapp.com.
        config.connectors.web.client_version = Some("2.3000.1023456789".into());
    })
    .await;
    let (status, body) = server.post("/v1/sessions", json!({ "id": "shop", "connector": "web" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["connector"], "web");
    assert!(device(&server, "shop").await.is_none(), "no device before the first connect");

    let (status, body) = server.post("/v1/sessions/shop/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let request = dials.recv().await.unwrap();
    assert!(request.starts_with("GET /ws/chat HTTP/1.1"), "{request}");
    assert!(request.to_ascii_lowercase().contains("upgrade: websocket"), "{request}");
    server.wait_for_status("shop", "connecting").await;
    // The new device (its identity, noise and prekey keys) is in the database.
    let created = eventually(|| async { device(&server, "shop").await }).await;
    let registration: serde_json::Value = serde_json::from_slice(&created).unwrap();
    assert!(registration["registration_id"].as_u64().is_some());

    let (status, body) = server.post("/v1/sessions/shop/disconnect", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_for_status("shop", "disconnected").await;

    // After a restart the same device connects again: no new keys, so no new link.
    let server = server.restart().await;
    while dials.try_recv().is_ok() {}
    let (status, _) = server.post("/v1/sessions/shop/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let request =
        tokio::time::timeout(std::time::Duration::from_secs(30), dials.recv()).await.unwrap().unwrap();
    assert!(request.starts_with("GET /ws/chat"), "{request}");
    let again: serde_json::Value = serde_json::from_slice(&device(&server, "shop").await.unwrap()).unwrap();
    assert_eq!(again["registration_id"], registration["registration_id"]);
    assert_eq!(again["identity_key"], registration["identity_key"]);

    // Deleting the session deletes its device.
    let (status, _) = server.call(server.request(reqwest::Method::DELETE, "/v1/sessions/shop")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(device(&server, "shop").await.is_none());
}

#[tokio::test]
async fn a_web_session_cannot_be_checked_before_it_connects() {
    let server = TestServer::start().await;
    let (status, _) = server.post("/v1/sessions", json!({ "id": "shop", "connector": "web" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) =
        server.post("/v1/sessions/shop/contacts/check", json!({ "phones": ["15550002222"] })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("session_not_connected"))
    );
}
