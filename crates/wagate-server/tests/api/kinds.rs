//! Message kinds besides text and media: location, contacts, reaction and poll, sim to sim.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{eventually, TestServer};

async fn send(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let mut body = body;
    body["to"] = json!("15550002222");
    server.post("/v1/sessions/alice/messages", body).await
}

#[tokio::test]
async fn every_kind_arrives_as_it_was_sent() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let (_, first) = send(&server, json!({ "type": "text", "text": { "body": "lunch?" } })).await;

    let location = json!({ "latitude": -23.5614, "longitude": -46.6559, "name": "MASP", "address": "Av. Paulista, 1578" });
    let poll = json!({ "question": "Where?", "options": ["pizza", "sushi", "tacos"], "selectable_count": 2 });
    let reaction = json!({ "message_id": first["id"], "emoji": "👍" });
    let bodies = [
        json!({ "type": "location", "location": location }),
        json!({ "type": "contacts", "contacts": [{ "name": "Ann Lee", "phones": ["+1 555 000 3333"] }, { "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nTEL:+15550004444\nEND:VCARD" }] }),
        json!({ "type": "poll", "poll": poll }),
        json!({ "type": "reaction", "reaction": reaction }),
        json!({ "type": "reaction", "reaction": { "message_id": first["id"], "emoji": "" } }),
    ];
    for body in &bodies {
        let (status, sent) = send(&server, body.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body} -> {sent}");
    }
    let received = eventually(|| async {
        let messages = server.messages("bob", "in").await;
        (messages.len() == 1 + bodies.len()).then_some(messages)
    })
    .await;
    assert_eq!(received[1]["location"], location);
    let contacts = received[2]["contacts"].as_array().unwrap();
    assert_eq!(contacts[0]["name"], "Ann Lee");
    assert!(contacts[0]["vcard"]
        .as_str()
        .unwrap()
        .contains("TEL;type=CELL;waid=15550003333:+1 555 000 3333"));
    assert_eq!(contacts[1]["name"], "Bob", "named from the vCard's FN");
    assert_eq!(received[3]["poll"], poll);
    assert_eq!(received[4]["reaction"], reaction);
    assert_eq!(received[5]["reaction"]["emoji"], "", "an empty emoji takes the reaction back");
}

#[tokio::test]
async fn malformed_kinds_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let cases = [
        (
            json!({ "type": "location", "location": { "latitude": 95.0, "longitude": 0.0 } }),
            "location.latitude",
        ),
        (json!({ "type": "location" }), "location"),
        (json!({ "type": "contacts", "contacts": [] }), "contacts"),
        (json!({ "type": "contacts", "contacts": [{ "name": "No Number" }] }), "contacts.phones"),
        (json!({ "type": "poll", "poll": { "question": "?", "options": ["only one"] } }), "poll.options"),
        (
            json!({ "type": "reaction", "reaction": { "message_id": "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV", "emoji": "👍" } }),
            "reaction.message_id",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = send(&server, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
    assert!(server.messages("alice", "out").await.is_empty());
}

#[tokio::test]
async fn a_reply_quotes_its_message_on_both_sides_and_mentions_travel() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let (status, question) = server
        .post(
            "/v1/sessions/alice/messages?wait=true",
            json!({ "to": "15550002222", "type": "text", "text": { "body": "lunch?" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{question}");
    let got = eventually(|| async { server.messages("bob", "in").await.pop() }).await;

    let reply = json!({ "to": "15550001111", "type": "text", "text": { "body": "@15550001111 yes!" },
        "context": { "message_id": got["id"] }, "mentions": ["+1 555 000 1111"] });
    let (status, sent) = server.post("/v1/sessions/bob/messages", reply).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["context"], json!({ "message_id": got["id"], "wa_id": question["wa_id"] }));
    assert_eq!(sent["mentions"], json!(["15550001111@s.whatsapp.net"]));
    let answer = eventually(|| async { server.messages("alice", "in").await.pop() }).await;
    assert_eq!(answer["context"]["message_id"], question["id"], "alice sees the reply quote her own message");
    assert_eq!(answer["context"]["wa_id"], question["wa_id"]);
    assert_eq!(answer["mentions"], json!(["15550001111@s.whatsapp.net"]));

    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (_, scheduled) = server
        .post("/v1/sessions/alice/messages", json!({ "to": "15550002222", "type": "text", "text": { "body": "later" }, "scheduled_at": later }))
        .await;
    let cases = [
        (
            json!({ "type": "text", "text": { "body": "re" }, "context": { "message_id": scheduled["id"] } }),
            "context.message_id",
        ),
        (
            json!({ "type": "text", "text": { "body": "re" }, "context": { "message_id": "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV" } }),
            "context.message_id",
        ),
        (json!({ "type": "text", "text": { "body": "hi" }, "mentions": ["not a number"] }), "mentions[0]"),
        (
            json!({ "type": "location", "location": { "latitude": 1.0, "longitude": 2.0 }, "mentions": ["15550002222"] }),
            "mentions",
        ),
        (
            json!({ "type": "reaction", "reaction": { "message_id": question["id"], "emoji": "👍" }, "context": { "message_id": question["id"] } }),
            "context",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = send(&server, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
}

#[tokio::test]
async fn edits_and_revokes_of_sent_messages_travel() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let (_, first) = send(&server, json!({ "type": "text", "text": { "body": "lunch at 12?" } })).await;
    let edit = json!({ "message_id": first["id"], "body": "lunch at 1?" });
    let (status, body) = send(&server, json!({ "type": "edit", "edit": edit })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let revoke = json!({ "message_id": first["id"] });
    let (status, body) = send(&server, json!({ "type": "revoke", "revoke": revoke })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let received = eventually(|| async {
        let messages = server.messages("bob", "in").await;
        (messages.len() == 3).then_some(messages)
    })
    .await;
    assert_eq!((received[1]["type"].as_str(), &received[1]["edit"]), (Some("edit"), &edit));
    assert_eq!((received[2]["type"].as_str(), &received[2]["revoke"]), (Some("revoke"), &revoke));

    // Only sent messages can be edited or revoked, with a body, and without a reply context.
    let inbound = &received[0]["id"];
    let cases = [
        (json!({ "type": "edit", "edit": { "message_id": first["id"], "body": " " } }), "edit.body"),
        (json!({ "type": "revoke", "revoke": { "message_id": "" } }), "revoke.message_id"),
        (
            json!({ "type": "revoke", "revoke": { "message_id": "msg_01M81CT1P101NSFF6A4DVJGB87" } }),
            "revoke.message_id",
        ),
        (json!({ "type": "edit" }), "edit"),
        (json!({ "type": "revoke", "revoke": revoke, "context": { "message_id": first["id"] } }), "context"),
    ];
    for (body, field) in cases {
        let (status, error) = send(&server, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {error}");
        assert_eq!(error["error"]["details"]["field"], field, "{body} -> {error}");
    }
    let (status, error) = server
        .post("/v1/sessions/bob/messages", json!({ "to": "15550001111", "type": "edit", "edit": { "message_id": inbound, "body": "mine now" } }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("received"), "{error}");
}

#[tokio::test]
async fn an_unknown_type_is_refused_with_every_kind_a_send_takes() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let (status, answer) = send(&server, json!({ "type": "pigeon" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"]["field"], "type");
    let message = answer["error"]["message"].as_str().unwrap();
    let every = "text, image, video, audio, document, sticker, location, contacts, reaction, poll, edit, revoke, template";
    assert!(message.contains(&format!("(supported: {every})")), "{message}");
    let (status, answer) = send(
        &server,
        json!({ "type": "image", "image": { "data": crate::common::png_base64(), "caption": 7 } }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"]["field"], "image.caption");
}
