//! Messages between `web` sessions and virtual contacts: every kind, receipts, reads, number checks.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{assert_unhandled_is_empty, contact, control, gateway, link, look, network, received, sha256};
use crate::common::{eventually, history};
use crate::receiver::Receiver;

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
    contact(&network, "15557770001", "Carol").await;
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
async fn media_travels_both_ways_with_a_person_and_they_get_our_receipts() {
    use base64::Engine as _;
    let network = network().await;
    let server = gateway(&network).await;
    contact(&network, "15557770001", "Carol").await;
    link(&server, &network, "shop", "15550001111").await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    // To the person: a catalogue picture with a caption.
    let ours: Vec<u8> = [b"\x89PNG\r\n\x1a\n".as_slice(), &[9u8; 30_000]].concat();
    let (status, sent) = server
        .post(
            "/v1/sessions/shop/messages",
            json!({ "to": "15557770001", "type": "image",
                    "image": { "data": format!("data:image/png;base64,{}", b64(&ours)), "caption": "new in" } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    server.wait_for_message_status(sent["id"].as_str().unwrap(), "read").await;
    let inbox: Value = look(&network, "/contacts/15557770001/messages").await;
    let got = &inbox.as_array().unwrap()[0];
    assert_eq!(
        (got["type"].as_str(), got["body"].as_str(), got["sha256"].as_str()),
        (Some("image"), Some("new in"), Some(sha256(&ours).as_str())),
        "{got}"
    );

    // From the person: a photo of what arrived, stored byte for byte.
    let theirs: Vec<u8> = [b"\xff\xd8\xff\xe0".as_slice(), &[4u8; 25_000]].concat();
    let (status, body) = control(
        &network,
        "/contacts/15557770001/messages",
        json!({ "to": "15550001111", "type": "image",
                "image": { "data": b64(&theirs), "mimetype": "image/jpeg", "caption": "arrived broken" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let their_id = body["id"].as_str().unwrap().to_owned();
    let got = received(&server, "shop", "image").await;
    assert_eq!(
        (got["image"]["caption"].as_str(), got["image"]["sha256"].as_str()),
        (Some("arrived broken"), Some(sha256(&theirs).as_str())),
        "{got}"
    );
    assert_eq!(got["from"], "15557770001@s.whatsapp.net", "{got}");
    let file = server
        .request(reqwest::Method::GET, &format!("/v1/media/{}", got["image"]["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(sha256(&file.bytes().await.unwrap()), sha256(&theirs));

    // The person sees two ticks once it is stored, and blue ones once the shop reads it.
    let receipts = |sent: Value| {
        let mine = sent.as_array().unwrap().iter().find(|m| m["id"] == their_id.as_str()).cloned();
        mine.map(|m| m["receipts"].clone()).unwrap_or_default()
    };
    eventually(|| async {
        let seen = receipts(look(&network, "/contacts/15557770001/sent").await);
        (seen == json!(["delivered"])).then_some(())
    })
    .await;
    let (status, body) =
        server.post(&format!("/v1/messages/{}/read", got["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(|| async {
        let seen = receipts(look(&network, "/contacts/15557770001/sent").await);
        (seen == json!(["delivered", "read"])).then_some(())
    })
    .await;
    assert_unhandled_is_empty(&network).await;
}
