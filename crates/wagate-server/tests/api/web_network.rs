//! `web` sessions on the local WhatsApp network (the `fake-whatsapp` crate): linked by QR code
//! through the fake's control API, as a phone would, then messaging each other and virtual
//! contacts through real WhatsApp multi-device traffic, driven only through wagate's API.

use std::net::SocketAddr;

use fake_whatsapp::{Config as NetworkConfig, FakeServer, Running};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{eventually, history, TestServer};

/// A WhatsApp network of our own on a free port.
pub(crate) async fn network() -> Running {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    FakeServer::start(NetworkConfig::default(), addr).await.expect("the local WhatsApp network starts")
}

/// A gateway whose `web` sessions reach `network`, with no pacing so tests run fast.
pub(crate) async fn gateway(network: &Running) -> TestServer {
    let ws_url = network.ws_url.clone();
    TestServer::start_with(move |config| {
        config.connectors.web.ws_url = ws_url;
        // A fixed version: nothing is fetched from web.whatsapp.com.
        config.connectors.web.client_version = Some("2.3000.1023456789".into());
        config.pacing.web = config.pacing.sim.clone();
    })
    .await
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
    let accounts: Value =
        reqwest::get(format!("{}/accounts", network.control_url)).await.unwrap().json().await.unwrap();
    let account =
        accounts.as_array().unwrap().iter().find(|a| a["phone"] == "15550001111").expect("the account");
    assert_eq!(account["devices"].as_array().unwrap().len(), 1, "{account}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_web_sessions_text_each_other_with_acks_and_receipts() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "alice", "15550001111").await;
    link(&server, &network, "bob", "15550002222").await;

    let sent = server.send_text("alice", "15550002222", "Hi Bob, over real WhatsApp traffic").await;
    let id = sent["id"].as_str().unwrap();
    let delivered = server.wait_for_message_status(id, "delivered").await;
    assert_eq!(history(&delivered)[..4], ["queued", "sending", "sent", "delivered"], "{delivered}");

    let received = eventually(|| async {
        server
            .messages("bob", "in")
            .await
            .into_iter()
            .find(|m| m["text"]["body"] == "Hi Bob, over real WhatsApp traffic")
    })
    .await;
    assert_eq!(received["from"], "15550001111@s.whatsapp.net", "{received}");
    assert_eq!(received["chat"], "15550001111@s.whatsapp.net", "{received}");
    assert!(received["sender"]["lid"].as_str().is_some_and(|lid| lid.ends_with("@lid")), "{received}");
    assert_eq!(received["wa_id"], delivered["wa_id"], "both sides know WhatsApp's id");

    // Bob reads it: Alice sees blue ticks.
    let (status, body) =
        server.post(&format!("/v1/messages/{}/read", received["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read"], json!([received["id"]]), "{body}");
    let read = server.wait_for_message_status(id, "read").await;
    assert_eq!(history(&read), ["queued", "sending", "sent", "delivered", "read"], "{read}");
    // Only received messages can be read.
    let (status, body) = server.post(&format!("/v1/messages/{id}/read"), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("message_not_received")),
        "{body}"
    );

    // And back, twice; Alice reads the chat up to the first reply only.
    let first = server.send_text("bob", "15550001111", "Hi Alice").await;
    let second = server.send_text("bob", "15550001111", "Still there?").await;
    for reply in [&first, &second] {
        server.wait_for_message_status(reply["id"].as_str().unwrap(), "delivered").await;
    }
    let first_in = eventually(|| async {
        server.messages("alice", "in").await.into_iter().find(|m| m["text"]["body"] == "Hi Alice")
    })
    .await;
    eventually(|| async {
        server.messages("alice", "in").await.into_iter().find(|m| m["text"]["body"] == "Still there?")
    })
    .await;
    let (status, body) =
        server.post("/v1/sessions/alice/chats/+15550002222/read", json!({ "up_to": first_in["id"] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read"], json!([first_in["id"]]), "{body}");
    server.wait_for_message_status(first["id"].as_str().unwrap(), "read").await;
    let (_, still) = server.get(&format!("/v1/messages/{}", second["id"].as_str().unwrap())).await;
    assert_eq!(still["status"], "delivered", "not read: {still}");
    // `up_to` must be a received message of that chat.
    let (status, body) =
        server.post("/v1/sessions/alice/chats/+15557770009/read", json!({ "up_to": first_in["id"] })).await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("up_to")),
        "{body}"
    );
    // Without it, the whole chat.
    let (status, body) = server.post("/v1/sessions/alice/chats/15550002222/read", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read"].as_array().unwrap().len(), 2, "{body}");
    server.wait_for_message_status(second["id"].as_str().unwrap(), "read").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_contact_gets_a_text_reads_it_and_writes_back() {
    let network = network().await;
    let server = gateway(&network).await;
    let (status, body) =
        control(&network, "/contacts", json!({ "phone": "15557770001", "name": "Carol" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    link(&server, &network, "shop", "15550001111").await;

    let sent = server.send_text("shop", "15557770001", "Your order shipped").await;
    let id = sent["id"].as_str().unwrap();
    let read = server.wait_for_message_status(id, "read").await;
    assert_eq!(history(&read), ["queued", "sending", "sent", "delivered", "read"], "{read}");
    let inbox: Value = reqwest::get(format!("{}/contacts/15557770001/messages", network.control_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got = &inbox.as_array().unwrap()[0];
    assert_eq!(
        (got["from"].as_str(), got["body"].as_str()),
        (Some("15550001111"), Some("Your order shipped"))
    );

    let (status, body) = control(
        &network,
        "/contacts/15557770001/messages",
        json!({ "to": "15550001111", "type": "text", "text": { "body": "Thanks!" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let received = eventually(|| async {
        server.messages("shop", "in").await.into_iter().find(|m| m["text"]["body"] == "Thanks!")
    })
    .await;
    assert_eq!(received["from"], "15557770001@s.whatsapp.net", "{received}");
    assert_eq!(received["sender"]["push_name"], "Carol", "{received}");
}
