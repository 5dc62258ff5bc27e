//! Linking a `web` session: by QR code, by pairing code, and what a user sees when nobody
//! scans or WhatsApp cannot be reached.

use reqwest::StatusCode;
use serde_json::{json, Value};

use std::net::SocketAddr;
use std::time::Duration;

use fake_whatsapp::{Config as NetworkConfig, FakeServer};

use super::{assert_unhandled_is_empty, control, gateway, link, look, network, reach_url, statuses};
use crate::common::{eventually, eventually_within, nz, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_links_a_web_session_by_scanning_its_qr_code() {
    let network = network().await;
    let server = gateway(&network).await;
    let session = link(&server, &network, "shop", "15550001111").await;
    assert_eq!(session["phone"], "15550001111", "{session}");
    assert!(session["jid"].as_str().is_some_and(|jid| jid.starts_with("15550001111")), "{session}");

    let seen = statuses(&server, "shop").await;
    let qr = seen.iter().position(|s| s == "qr").expect("qr before connected");
    assert!(seen[qr..].contains(&"connected".to_owned()), "{seen:?}");
    let (_, qr_events) = server.get("/v1/events?session_id=shop&types=session.qr&limit=10").await;
    assert!(!qr_events["data"].as_array().unwrap().is_empty(), "the QR code was published");
    // The phone's account now has wagate's device linked.
    let accounts: Value = look(&network, "/accounts").await;
    let account =
        accounts.as_array().unwrap().iter().find(|a| a["phone"] == "15550001111").expect("the account");
    assert_eq!(account["devices"].as_array().unwrap().len(), 1, "{account}");
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_links_a_web_session_by_typing_its_pairing_code() {
    let network = network().await;
    let server = gateway(&network).await;
    let (status, body) = server.post("/v1/sessions", json!({ "id": "shop", "connector": "web" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) =
        server.post("/v1/sessions/shop/connect", json!({ "pairing_phone": "15550003333" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let code = eventually(|| async {
        let (status, body) = server.get("/v1/sessions/shop/qr").await;
        (status == StatusCode::OK).then(|| body["pairing_code"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let (status, body) = control(&network, "/pair", json!({ "code": code, "phone": "15550003333" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = server.wait_for_status("shop", "connected").await;
    assert_eq!(session["phone"], "15550003333", "{session}");
    assert!(statuses(&server, "shop").await.contains(&"pairing_code".to_owned()));
    assert_unhandled_is_empty(&network).await;
}

/// A free local address nobody listens on (yet).
fn free_address() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    socket.local_addr().expect("its address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_says_when_whatsapp_cannot_be_reached_and_links_once_it_can() {
    let address = free_address();
    let ws_url = format!("ws://{address}/ws/chat");
    let server = TestServer::start_with(|config| {
        reach_url(config, &ws_url);
        config.connectors.web.connect_timeout_ms = nz(300);
    })
    .await;
    let (status, body) = server.post("/v1/sessions", json!({ "id": "shop", "connector": "web" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.post("/v1/sessions/shop/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // Not `connecting` forever: the user is told, and the session keeps trying.
    let (_, events) = eventually(|| async {
        let (status, events) = server.get("/v1/events?session_id=shop&types=session.status&limit=100").await;
        let told = events["data"].as_array()?.iter().any(|e| e["data"]["status"] == "disconnected");
        told.then_some((status, events))
    })
    .await;
    let told =
        events["data"].as_array().unwrap().iter().find(|e| e["data"]["status"] == "disconnected").unwrap();
    let reason = told["data"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with(&format!("unreachable: no answer from WhatsApp at {ws_url}")), "{told}");
    eventually(|| async {
        let seen = statuses(&server, "shop").await;
        let after = seen.iter().position(|s| s == "disconnected")?;
        seen[after..].contains(&"connecting".to_owned()).then_some(())
    })
    .await;

    // WhatsApp is back at that address: the session shows its QR code on its own.
    let network = FakeServer::start(NetworkConfig::default(), address).await.expect("the network starts");
    let qr = server.wait_for_qr("shop").await;
    let (status, body) = control(&network, "/scan", json!({ "qr": qr, "phone": "15550001111" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_for_status("shop", "connected").await;
    assert_unhandled_is_empty(&network).await;
}

/// whatsapp-rust times QR codes itself (60 s for the first, 20 s for each next one), so this
/// takes 80 s with the two codes the network offers here instead of WhatsApp's six.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "80 s of the WhatsApp client's own QR timers; CI runs it"]
async fn qr_codes_rotate_and_expire_when_nobody_scans() {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let config = NetworkConfig { qr_refs: 2, ..NetworkConfig::default() };
    let network = FakeServer::start(config, addr).await.expect("the network starts");
    let server = gateway(&network).await;
    let (status, body) = server.post("/v1/sessions", json!({ "id": "shop", "connector": "web" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.post("/v1/sessions/shop/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let first = server.wait_for_qr("shop").await;

    let expired = eventually_within(Duration::from_secs(120), || async {
        let (_, body) = server.get("/v1/sessions/shop").await;
        (body["status"] == "disconnected").then_some(body)
    })
    .await;
    assert!(expired["status_reason"].as_str().is_some_and(|r| r.starts_with("qr_expired")), "{expired}");
    let (_, shown) = server.get("/v1/events?session_id=shop&types=session.qr&limit=10").await;
    let codes: Vec<&str> =
        shown["data"].as_array().unwrap().iter().filter_map(|e| e["data"]["code"].as_str()).collect();
    assert_eq!(codes.len(), 2, "one code per reference: {shown}");
    assert_eq!(codes[0], first);
    assert_ne!(codes[0], codes[1], "the code rotated");
    // Given up, not retried in a loop: the QR is gone until the user connects again.
    let (status, body) = server.get("/v1/sessions/shop/qr").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(statuses(&server, "shop").await.last().map(String::as_str), Some("disconnected"));

    // Connecting again starts over with fresh codes, and a phone can link.
    let (status, body) = server.post("/v1/sessions/shop/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let fresh = eventually(|| async {
        let (status, body) = server.get("/v1/sessions/shop/qr").await;
        let code = body["code"].as_str().filter(|c| !codes.contains(c)).map(str::to_owned);
        (status == StatusCode::OK).then_some(code).flatten()
    })
    .await;
    let (status, body) = control(&network, "/scan", json!({ "qr": fresh, "phone": "15550001111" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_for_status("shop", "connected").await;
    assert_unhandled_is_empty(&network).await;
}
