//! `web` sessions on the local WhatsApp network (the `fake-whatsapp` crate): linked by QR code
//! through the fake's control API, as a phone would, then messaging each other and virtual
//! contacts through real WhatsApp multi-device traffic, driven only through wagate's API.

use std::net::SocketAddr;

use fake_whatsapp::{Config as NetworkConfig, FakeServer, Running};
use reqwest::StatusCode;
use serde_json::{json, Value};

use wagate_server::Config;

use crate::common::{eventually, fast_config, TestData, TestServer};

mod cluster;
mod lifecycle;
mod linking;
mod messaging;

/// A WhatsApp network of our own on a free port.
pub(crate) async fn network() -> Running {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    FakeServer::start(NetworkConfig::default(), addr).await.expect("the local WhatsApp network starts")
}

/// Points `web` sessions at `network`, with no pacing so tests run fast.
pub(crate) fn reach(config: &mut Config, network: &Running) {
    reach_url(config, &network.ws_url);
}

/// Points `web` sessions at a WhatsApp network at `ws_url` (listening or not), with no pacing.
pub(crate) fn reach_url(config: &mut Config, ws_url: &str) {
    config.connectors.web.ws_url = ws_url.to_owned();
    // A fixed version: nothing is fetched from web.whatsapp.com.
    config.connectors.web.client_version = Some("2.3000.1023456789".into());
    config.pacing.web = config.pacing.sim.clone();
}

/// A gateway whose `web` sessions reach `network`.
pub(crate) async fn gateway(network: &Running) -> TestServer {
    TestServer::start_with(|config| reach(config, network)).await
}

pub(crate) async fn control(network: &Running, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", network.control_url))
        .json(&body)
        .send()
        .await
        .expect("the control API answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What the network's control API shows at `path` (`/accounts`, `/unhandled`, …).
pub(crate) async fn look(network: &Running, path: &str) -> Value {
    let response =
        reqwest::get(format!("{}{path}", network.control_url)).await.expect("the control API answers");
    response.json().await.expect("JSON")
}

/// Starts a virtual contact: a person on the network who is not a wagate session.
pub(crate) async fn contact(network: &Running, phone: &str, name: &str) {
    let (status, body) = control(network, "/contacts", json!({ "phone": phone, "name": name })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A gateway reaching `network` on a runtime of its own, which the test can kill like a crash
/// ([`TestServer::kill`]).
pub(crate) async fn killable_gateway(network: &Running) -> TestServer {
    let data = TestData::new().await;
    let mut config = fast_config(&data);
    reach(&mut config, network);
    tokio::task::block_in_place(|| TestServer::start_killable(data, config))
}

/// Creates a `web` session, connects it and scans its QR code with the phone of `phone`;
/// returns the session once `connected`.
pub(crate) async fn link(server: &TestServer, network: &Running, id: &str, phone: &str) -> Value {
    let (status, body) = server.post("/v1/sessions", json!({ "id": id, "connector": "web" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.post(&format!("/v1/sessions/{id}/connect"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let qr = server.wait_for_qr(id).await;
    let (status, body) = control(network, "/scan", json!({ "qr": qr, "phone": phone })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_for_status(id, "connected").await
}

/// The session's `session.status` events, oldest first.
pub(crate) async fn statuses(server: &TestServer, session: &str) -> Vec<String> {
    let (_, body) =
        server.get(&format!("/v1/events?session_id={session}&types=session.status&limit=100")).await;
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["data"]["status"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// What `session` received last of `kind`, once it arrived.
pub(crate) async fn received(server: &TestServer, session: &str, kind: &str) -> Value {
    eventually(|| async {
        server.messages(session, "in").await.into_iter().rev().find(|m| m["type"] == kind)
    })
    .await
}

/// The fake answered every stanza the clients sent with what it models.
pub(crate) async fn assert_unhandled_is_empty(network: &Running) {
    let unhandled: Value = look(network, "/unhandled").await;
    assert_eq!(unhandled, json!([]), "stanzas the fake does not model");
}

/// The fake's view of a phone's first linked device.
pub(crate) async fn device(network: &Running, phone: &str) -> Value {
    let accounts: Value = look(network, "/accounts").await;
    let account =
        accounts.as_array().unwrap().iter().find(|a| a["phone"] == phone).cloned().expect("the account");
    account["devices"][0].clone()
}
