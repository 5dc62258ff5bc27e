//! `web` sessions on the local WhatsApp network (the `fake-whatsapp` crate): linked by QR code
//! through the fake's control API, as a phone would, then messaging each other and virtual
//! contacts through real WhatsApp multi-device traffic, driven only through wagate's API.

use std::net::SocketAddr;

use fake_whatsapp::{Config as NetworkConfig, FakeServer, Running};
use reqwest::StatusCode;
use serde_json::{json, Value};

use wagate_server::Config;

use crate::common::{eventually, fast_config, history, TestData, TestServer};
use crate::receiver::Receiver;

/// A WhatsApp network of our own on a free port.
pub(crate) async fn network() -> Running {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    FakeServer::start(NetworkConfig::default(), addr).await.expect("the local WhatsApp network starts")
}

/// Points `web` sessions at `network`, with no pacing so tests run fast.
pub(crate) fn reach(config: &mut Config, network: &Running) {
    config.connectors.web.ws_url = network.ws_url.clone();
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
async fn look(network: &Running, path: &str) -> Value {
    let response =
        reqwest::get(format!("{}{path}", network.control_url)).await.expect("the control API answers");
    response.json().await.expect("JSON")
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
    let accounts: Value = look(&network, "/accounts").await;
    let account =
        accounts.as_array().unwrap().iter().find(|a| a["phone"] == "15550001111").expect("the account");
    assert_eq!(account["devices"].as_array().unwrap().len(), 1, "{account}");
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_web_sessions_text_each_other_with_acks_and_receipts() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "alice", "15550001111").await;
    link(&server, &network, "bob", "15550002222").await;
    let receiver = Receiver::start().await;
    server.create_webhook(&receiver.url, json!(["message.*"])).await;

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
    // Webhooks heard both sides: alice's statuses, bob's message.
    let hits = eventually(|| async {
        let events: Vec<Value> = receiver.hits().iter().map(|h| h.event()).collect();
        let statuses: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "message.status" && e["data"]["message_id"] == id)
            .filter_map(|e| e["data"]["status"].as_str())
            .collect();
        let heard = events.iter().any(|e| e["type"] == "message.received" && e["session_id"] == "bob");
        (heard && statuses.contains(&"read"))
            .then_some(statuses.into_iter().map(str::to_owned).collect::<Vec<_>>())
    })
    .await;
    for status in ["queued", "sending", "sent", "delivered", "read"] {
        assert!(hits.iter().any(|s| s == status), "no {status} webhook: {hits:?}");
    }
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
    assert_unhandled_is_empty(&network).await;
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
    let inbox: Value = look(&network, "/contacts/15557770001/messages").await;
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

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What `session` received last of `kind`, once it arrived.
async fn received(server: &TestServer, session: &str, kind: &str) -> Value {
    eventually(|| async {
        server.messages(session, "in").await.into_iter().rev().find(|m| m["type"] == kind)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_travels_between_web_sessions_and_media_arrives_byte_for_byte() {
    use base64::Engine as _;
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "alice", "15550001111").await;
    link(&server, &network, "bob", "15550002222").await;

    let image: Vec<u8> = [
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".as_slice(),
        &(0..40_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    ]
    .concat();
    let document: Vec<u8> = [b"%PDF-1.4\n".as_slice(), &[b'x'; 9_000]].concat();
    let voice: Vec<u8> = [b"OggS\0\x02".as_slice(), &[7u8; 3_000]].concat();
    let video: Vec<u8> = [b"\0\0\0\x18ftypmp42".as_slice(), &[3u8; 6_000]].concat();
    let sticker: Vec<u8> = [b"RIFF\x10\x27\0\0WEBPVP8 ".as_slice(), &[5u8; 2_000]].concat();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let first = server.send_text("alice", "15550002222", "first").await;
    server.wait_for_message_status(first["id"].as_str().unwrap(), "delivered").await;
    let sends = [
        json!({ "type": "image", "image": { "data": format!("data:image/png;base64,{}", b64(&image)), "caption": "a cat" } }),
        json!({ "type": "document", "document": { "data": format!("data:application/pdf;base64,{}", b64(&document)), "filename": "report.pdf" } }),
        json!({ "type": "location", "location": { "latitude": 52.52, "longitude": 13.405, "name": "Berlin" } }),
        json!({ "type": "contacts", "contacts": [{ "name": "Ana", "phones": ["+15550009999"] }] }),
        json!({ "type": "text", "text": { "body": "a reply" }, "context": { "message_id": first["id"] } }),
        json!({ "type": "reaction", "reaction": { "message_id": first["id"], "emoji": "👍" } }),
        json!({ "type": "poll", "poll": { "question": "Lunch?", "options": ["Yes", "No"] } }),
        json!({ "type": "edit", "edit": { "message_id": first["id"], "body": "first, edited" } }),
        json!({ "type": "audio", "audio": { "data": format!("data:audio/ogg;base64,{}", b64(&voice)), "voice": true } }),
        json!({ "type": "video", "video": { "data": format!("data:video/mp4;base64,{}", b64(&video)), "caption": "a clip" } }),
        json!({ "type": "sticker", "sticker": { "data": format!("data:image/webp;base64,{}", b64(&sticker)) } }),
        json!({ "type": "reaction", "reaction": { "message_id": first["id"], "emoji": "" } }),
    ];
    for content in sends {
        let mut body = content.clone();
        body["to"] = json!("15550002222");
        let (status, sent) = server.post("/v1/sessions/alice/messages", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{content}: {sent}");
        let sent = server.wait_until_sent(sent["id"].as_str().unwrap()).await;
        assert!(sent["wa_id"].is_string(), "{sent}");
    }

    let got = received(&server, "bob", "image").await;
    assert_eq!(got["image"]["caption"], "a cat", "{got}");
    assert_eq!(got["image"]["sha256"], sha256(&image), "{got}");
    let file = server
        .request(reqwest::Method::GET, &format!("/v1/media/{}", got["image"]["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(sha256(&file.bytes().await.unwrap()), sha256(&image));
    let got = received(&server, "bob", "document").await;
    assert_eq!(
        (got["document"]["filename"].as_str(), got["document"]["sha256"].as_str()),
        (Some("report.pdf"), Some(sha256(&document).as_str())),
        "{got}"
    );
    let got = received(&server, "bob", "location").await;
    assert_eq!(
        (got["location"]["latitude"].as_f64(), got["location"]["name"].as_str()),
        (Some(52.52), Some("Berlin")),
        "{got}"
    );
    let got = received(&server, "bob", "contacts").await;
    assert!(got["contacts"].to_string().contains("15550009999"), "{got}");
    let reply = eventually(|| async {
        server.messages("bob", "in").await.into_iter().find(|m| m["text"]["body"] == "a reply")
    })
    .await;
    let bobs_first = eventually(|| async {
        server
            .messages("bob", "in")
            .await
            .into_iter()
            .find(|m| m["wa_id"] == first["wa_id"] || m["text"]["body"] == "first")
    })
    .await;
    assert_eq!(reply["context"]["message_id"], bobs_first["id"], "the quote names bob's copy: {reply}");
    let got = eventually(|| async {
        server.messages("bob", "in").await.into_iter().find(|m| m["reaction"]["emoji"] == "👍")
    })
    .await;
    assert_eq!(got["reaction"]["message_id"], bobs_first["id"], "{got}");
    let got = received(&server, "bob", "poll").await;
    assert_eq!(got["poll"]["options"], json!(["Yes", "No"]), "{got}");
    let got = received(&server, "bob", "edit").await;
    assert_eq!(got["edit"]["body"], "first, edited", "{got}");
    let got = received(&server, "bob", "audio").await;
    assert_eq!(
        (got["audio"]["voice"].as_bool(), got["audio"]["sha256"].as_str()),
        (Some(true), Some(sha256(&voice).as_str())),
        "{got}"
    );
    let got = received(&server, "bob", "video").await;
    assert_eq!(
        (got["video"]["caption"].as_str(), got["video"]["sha256"].as_str()),
        (Some("a clip"), Some(sha256(&video).as_str())),
        "{got}"
    );
    let got = received(&server, "bob", "sticker").await;
    assert_eq!(got["sticker"]["sha256"], sha256(&sticker), "{got}");
    // The reaction taken back: an empty emoji.
    eventually(|| async {
        let reactions: Vec<Value> =
            server.messages("bob", "in").await.into_iter().filter(|m| m["type"] == "reaction").collect();
        (reactions.len() == 2).then_some(())
    })
    .await;
    let got = received(&server, "bob", "reaction").await;
    assert_eq!(got["reaction"]["emoji"], "", "{got}");

    // And the first message taken back for everyone.
    let (status, sent) = server
        .post(
            "/v1/sessions/alice/messages",
            json!({ "to": "15550002222", "type": "revoke", "revoke": { "message_id": first["id"] } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let got = received(&server, "bob", "revoke").await;
    assert_eq!(got["revoke"]["message_id"], bobs_first["id"], "{got}");
    assert_unhandled_is_empty(&network).await;
}

/// The fake answered every stanza the clients sent with what it models.
async fn assert_unhandled_is_empty(network: &Running) {
    let unhandled: Value = look(network, "/unhandled").await;
    assert_eq!(unhandled, json!([]), "stanzas the fake does not model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_web_sessions_come_back_after_a_restart_without_a_qr_code() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "alice", "15550001111").await;
    link(&server, &network, "bob", "15550002222").await;
    let server = server.restart().await;
    server.wait_for_status("alice", "connected").await;
    server.wait_for_status("bob", "connected").await;
    let qr_events = |body: Value| body["data"].as_array().unwrap().len();
    let (_, before) = server.get("/v1/events?session_id=alice&types=session.qr&limit=100").await;

    let sent = server.send_text("alice", "15550002222", "after the restart").await;
    server.wait_for_message_status(sent["id"].as_str().unwrap(), "delivered").await;
    eventually(|| async {
        server.messages("bob", "in").await.into_iter().find(|m| m["text"]["body"] == "after the restart")
    })
    .await;
    let (_, after) = server.get("/v1/events?session_id=alice&types=session.qr&limit=100").await;
    assert_eq!(qr_events(before), qr_events(after), "no new QR code after the restart");
    // The second login of each device used the IK handshake (the server key is known).
    let accounts: Value = look(&network, "/accounts").await;
    for account in accounts.as_array().unwrap() {
        let device = &account["devices"][0];
        assert!(device["logins"].as_u64().unwrap() >= 2, "{account}");
        assert_eq!(device["last_pattern"], "ik", "{account}");
    }
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_check_asks_the_network() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "alice", "15550001111").await;
    link(&server, &network, "bob", "15550002222").await;
    let (status, body) = server
        .post("/v1/sessions/alice/contacts/check", json!({ "phones": ["+15550002222", "15550004444"] }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on: Vec<(&str, bool)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["phone"].as_str().unwrap(), c["on_whatsapp"].as_bool().unwrap()))
        .collect();
    assert_eq!(on, [("15550002222", true), ("15550004444", false)], "{body}");
    assert!(body["data"][0]["lid"].as_str().is_some_and(|l| l.ends_with("@lid")), "{body}");
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_as_whatsapp_ends_them() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "unlinked", "15550001111").await;
    link(&server, &network, "logout", "15550002222").await;
    link(&server, &network, "banned", "15550003333").await;
    link(&server, &network, "outdated", "15550004444").await;

    // Unlinked from the phone while online: logged out, its keys gone.
    let (status, body) = control(&network, "/accounts/15550001111/unlink", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_for_status("unlinked", "logged_out").await;
    // Logged out through the API: the phone no longer lists the device.
    let (status, body) = server.post("/v1/sessions/logout/logout", json!({})).await;
    assert!(status.is_success(), "{body}");
    server.wait_for_status("logout", "logged_out").await;
    let account = eventually(|| async {
        let accounts: Value = look(&network, "/accounts").await;
        accounts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["phone"] == "15550002222" && a["devices"] == json!([]))
            .cloned()
    })
    .await;
    assert_eq!(account["devices"], json!([]));
    // A temporary ban, and a client too old: told, not retried in a loop.
    let (status, body) = control(&network, "/accounts/15550003333/ban", json!({ "seconds": 3600 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let banned = server.wait_for_status("banned", "disconnected").await;
    assert!(banned["status_reason"].as_str().is_some_and(|r| r.starts_with("temporary_ban")), "{banned}");
    let (status, body) = control(&network, "/accounts/15550004444/outdated", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outdated = server.wait_for_status("outdated", "failed").await;
    assert!(
        outdated["status_reason"].as_str().is_some_and(|r| r.starts_with("client_outdated")),
        "{outdated}"
    );
}

/// The fake's view of a phone's first linked device.
async fn device(network: &Running, phone: &str) -> Value {
    let accounts: Value = look(network, "/accounts").await;
    let account =
        accounts.as_array().unwrap().iter().find(|a| a["phone"] == phone).cloned().expect("the account");
    account["devices"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_arrive_while_the_gateway_is_down_are_stored_once_when_it_is_back() {
    let network = network().await;
    let (status, body) =
        control(&network, "/contacts", json!({ "phone": "15557770001", "name": "Carol" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = TestData::new().await;
    let mut config = fast_config(&data);
    reach(&mut config, &network);
    let server = tokio::task::block_in_place(|| TestServer::start_killable(data, config));
    link(&server, &network, "shop", "15550001111").await;
    let (data, config) = tokio::task::block_in_place(|| server.kill());

    // The gateway died without a goodbye: WhatsApp keeps what it could not hand over.
    let bodies = ["one", "two", "three"];
    for body in bodies {
        let (status, sent) = control(
            &network,
            "/contacts/15557770001/messages",
            json!({ "to": "15550001111", "type": "text", "text": { "body": body } }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{sent}");
    }
    eventually(|| async {
        (device(&network, "15550001111").await["queued"].as_u64() >= Some(3)).then_some(())
    })
    .await;

    let server = TestServer::start_in(data, config).await;
    server.wait_for_status("shop", "connected").await;
    let received = eventually(|| async {
        let received = server.messages("shop", "in").await;
        (received.len() >= bodies.len()).then_some(received)
    })
    .await;
    let mut got: Vec<&str> = received.iter().map(|m| m["text"]["body"].as_str().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, ["one", "three", "two"], "each once");
    // Acknowledged only once stored: nothing is left waiting on the network.
    eventually(|| async { (device(&network, "15550001111").await["queued"] == 0).then_some(()) }).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.messages("shop", "in").await.len(), bodies.len(), "nothing stored twice");
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_reconnects_by_itself() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "shop", "15550001111").await;
    let (status, body) = control(&network, "/accounts/15550001111/drop", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(|| async {
        let seen = statuses(&server, "shop").await;
        let dropped = seen.iter().rposition(|s| s == "disconnected")?;
        seen[dropped..].contains(&"connected".to_owned()).then_some(())
    })
    .await;
    let (_, session) = server.get("/v1/sessions/shop").await;
    assert_eq!(session["status"], "connected", "{session}");
    let logins = device(&network, "15550001111").await["logins"].as_u64().unwrap();
    assert!(logins >= 2, "it logged in again: {logins}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_unlinked_while_the_gateway_was_down_is_logged_out_when_it_is_back() {
    let network = network().await;
    let data = TestData::new().await;
    let mut config = fast_config(&data);
    reach(&mut config, &network);
    let server = tokio::task::block_in_place(|| TestServer::start_killable(data, config));
    link(&server, &network, "shop", "15550001111").await;
    let (data, config) = tokio::task::block_in_place(|| server.kill());
    let (status, body) = control(&network, "/accounts/15550001111/unlink", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let server = TestServer::start_in(data, config).await;
    let session = server.wait_for_status("shop", "logged_out").await;
    assert_eq!(session["phone"], Value::Null, "the link is forgotten: {session}");
    // Its keys are gone: connecting again starts a new link with a QR code.
    let (status, body) = server.post("/v1/sessions/shop/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    server.wait_for_qr("shop").await;
}
