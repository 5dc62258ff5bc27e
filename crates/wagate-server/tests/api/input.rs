//! Bad input gets a clear JSON error with the right status and writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestServer;

fn text(to: &str) -> Value {
    json!({ "to": to, "type": "text", "text": { "body": "hi" } })
}

async fn expect_error(
    server: &TestServer,
    request: reqwest::RequestBuilder,
    status: StatusCode,
    code: &str,
) -> Value {
    let (got, body) = server.call(request).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

#[tokio::test]
async fn requests_without_the_key_are_401() {
    let server = TestServer::start().await;
    let url = format!("{}/v1/sessions", server.base);
    let client = reqwest::Client::new();
    let missing = client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let wrong = client.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let header = client.get(&url).header("X-Api-Key", crate::common::KEY).send().await.unwrap();
    assert_eq!(header.status(), StatusCode::OK);
    assert_eq!(client.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(client.get(format!("{}/readyz", server.base)).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_things_are_404() {
    let server = TestServer::start().await;
    let not_found = StatusCode::NOT_FOUND;
    expect_error(&server, server.request(Method::GET, "/v1/sessions/ghost"), not_found, "session_not_found")
        .await;
    expect_error(
        &server,
        server.request(Method::GET, "/v1/sessions/Not%20Valid"),
        not_found,
        "session_not_found",
    )
    .await;
    expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions/ghost/connect"),
        not_found,
        "session_not_found",
    )
    .await;
    expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions/ghost/messages").json(&text("15557770001")),
        not_found,
        "session_not_found",
    )
    .await;
    expect_error(
        &server,
        server.request(Method::GET, "/v1/sessions/ghost/messages"),
        not_found,
        "session_not_found",
    )
    .await;
    expect_error(
        &server,
        server.request(Method::GET, "/v1/messages/msg_01M81247CAMA1ZJP5C3GQK2GT2"),
        not_found,
        "message_not_found",
    )
    .await;
    expect_error(&server, server.request(Method::GET, "/v1/messages/nope"), not_found, "message_not_found")
        .await;
    expect_error(&server, server.request(Method::GET, "/v1/nothing"), not_found, "route_not_found").await;
    expect_error(
        &server,
        server.request(Method::PUT, "/v1/sessions"),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn wrong_state_and_duplicates_are_409() {
    let server = TestServer::start().await;
    server.create_session("alice").await;
    let conflict = StatusCode::CONFLICT;
    expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions").json(&json!({ "id": "alice", "connector": "sim" })),
        conflict,
        "session_exists",
    )
    .await;
    expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions/alice/disconnect"),
        conflict,
        "session_not_connected",
    )
    .await;
    expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions/alice/logout"),
        conflict,
        "session_not_linked",
    )
    .await;
    expect_error(&server, server.request(Method::GET, "/v1/sessions/alice/qr"), conflict, "no_qr_code").await;
}

#[tokio::test]
async fn malformed_oversized_and_invalid_bodies() {
    let server = TestServer::start().await;
    server.create_session("alice").await;
    let send = || server.request(Method::POST, "/v1/sessions/alice/messages");
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    expect_error(
        &server,
        send().header("content-type", "application/json").body("{\"to\":"),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    expect_error(
        &server,
        send().body(text("15557770001").to_string()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // Sends take large bodies (a file as base64 `data`); other routes stop at api.max_body_bytes.
    let huge = json!({ "connector": "sim", "name": "x".repeat(1_100_000) });
    let create = server.request(Method::POST, "/v1/sessions").json(&huge);
    expect_error(&server, create, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    for (body, field) in [
        (text("12345"), "to"),
        (text("555-CALL-NOW"), "to"),
        (text("1@example.com"), "to"),
        (json!({ "type": "text", "text": { "body": "hi" } }), "to"),
        (json!({ "to": "15557770001", "type": "text", "text": { "body": "" } }), "text.body"),
        (json!({ "to": "15557770001", "type": "text", "text": { "body": "x".repeat(4097) } }), "text.body"),
        (json!({ "to": "15557770001", "type": "text", "text": {} }), "text.body"),
        (json!({ "to": "15557770001", "type": "carrier_pigeon" }), "type"),
        (json!({ "to": 15557770001u64, "type": "text", "text": { "body": "hi" } }), "to"),
    ] {
        let error = expect_error(&server, send().json(&body), unprocessable, "invalid_field").await;
        assert_eq!(error["error"]["details"]["field"], field, "{body} -> {error}");
    }
    let mut replying = text("15557770001");
    replying["context"] = json!({ "message_id": "msg_01M81CT1P101NSFF6A4DVJGB87" });
    let error = expect_error(&server, send().json(&replying), unprocessable, "invalid_field").await;
    assert_eq!(error["error"]["details"]["field"], "context.message_id", "a reply to no message");
    let long_key = "k".repeat(300);
    expect_error(
        &server,
        send().header("Idempotency-Key", long_key).json(&text("15557770001")),
        unprocessable,
        "invalid_field",
    )
    .await;

    for (body, field) in [
        (json!({ "id": "Bad Id", "connector": "sim" }), "id"),
        (json!({ "connector": "fax" }), "connector"),
        (json!({ "connector": "sim", "metadata": [1] }), "metadata"),
        (json!({ "connector": "sim", "colour": "red" }), "colour"),
    ] {
        let error = expect_error(
            &server,
            server.request(Method::POST, "/v1/sessions").json(&body),
            unprocessable,
            "invalid_field",
        )
        .await;
        assert_eq!(error["error"]["details"]["field"], field, "{body} -> {error}");
    }
    expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions").json(&json!({ "connector": "cloud" })),
        unprocessable,
        "invalid_field",
    )
    .await;
    expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions/alice/connect").json(&json!({ "pairing_phone": "12" })),
        unprocessable,
        "invalid_field",
    )
    .await;
    for query in ["limit=0", "direction=sideways", "before=evt_1", "chat=abc"] {
        let (status, body) = server.get(&format!("/v1/sessions/alice/messages?{query}")).await;
        assert_eq!(status, unprocessable, "{query}: {body}");
    }

    // None of it was written.
    assert!(server.messages("alice", "out").await.is_empty());
    let events = server.all_events().await;
    assert!(events.iter().all(|e| e["type"] == "session.status"), "{events:?}");
    let (_, sessions) = server.get("/v1/sessions").await;
    assert_eq!(sessions["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn disabled_sim_has_no_sim_routes() {
    let server = TestServer::start_with(|c| c.connectors.sim.enabled = false).await;
    let (status, _) = server.post("/v1/sim/scan", json!({ "code": "x", "phone": "15550001111" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions").json(&json!({ "connector": "sim" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "connector_unavailable",
    )
    .await;
}

#[tokio::test]
async fn a_nested_bad_field_is_named_by_its_path() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases = [
        (
            "/v1/sessions/alice/messages",
            json!({ "to": "15557770001", "type": "location", "location": { "latitude": 1.5, "longitude": 2.5, "colour": "red" } }),
            "location.colour",
        ),
        (
            "/v1/sessions/alice/messages",
            json!({ "to": "15557770001", "type": "poll", "poll": { "options": ["a", "b"] } }),
            "poll.question",
        ),
        (
            "/v1/sessions/alice/campaigns",
            json!({ "name": "x", "content": { "type": "text", "text": { "body": "hi" } },
                "recipients": [{ "to": "15557770001" }, { "to": "15557770002" }, { "to": "15557770003" }, { "phone": "15557770004" }] }),
            "recipients[3].phone",
        ),
        (
            "/v1/templates",
            json!({ "name": "x", "content": { "type": "document", "document": { "data": "", "filename": ["a"] } } }),
            "content.document.filename",
        ),
    ];
    for (path, body, field) in cases {
        let error = expect_error(
            &server,
            server.request(Method::POST, path).json(&body),
            unprocessable,
            "invalid_field",
        )
        .await;
        assert_eq!(error["error"]["details"]["field"], field, "{body} -> {error}");
    }
    // The body itself of the wrong shape has no field to name, and is still a 422.
    let error = expect_error(
        &server,
        server.request(Method::POST, "/v1/sessions/alice/messages").json(&json!(["hi"])),
        unprocessable,
        "invalid_field",
    )
    .await;
    assert!(error["error"].get("details").is_none(), "{error}");
}

#[tokio::test]
async fn a_body_is_an_object_and_a_whole_float_is_an_integer() {
    let server = TestServer::start().await;
    server.create_org("acme", json!({ "sessions": 3 })).await;
    // Serde would read `[null, null]` as a struct with both fields left out: an empty update.
    for body in [json!([null, null]), json!({ "quotas": [1, 2] })] {
        let request = server.request(Method::PATCH, "/v1/orgs/acme").json(&body);
        expect_error(&server, request, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    }
    let (status, org) = server.get("/v1/orgs/acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(org["quotas"]["sessions"], 3, "{org}");
    // `5.0` is the integer 5 to a JSON Schema; `5.5` is no integer.
    let (status, org) = server.post("/v1/orgs", json!({ "id": "beta", "quotas": { "sessions": 5.0 } })).await;
    assert_eq!(status, StatusCode::CREATED, "{org}");
    assert_eq!(org["quotas"]["sessions"], 5, "{org}");
    let request = server
        .request(Method::POST, "/v1/orgs")
        .json(&json!({ "id": "gamma", "quotas": { "sessions": 5.5 } }));
    let error = expect_error(&server, request, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    assert_eq!(error["error"]["details"]["field"], "quotas", "{error}");
    let (status, _) = server.get("/v1/orgs/gamma").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A connect's body is optional; `null` is none.
    server.create_session("quiet").await;
    let connect = server
        .request(Method::POST, "/v1/sessions/quiet/connect")
        .header("content-type", "application/json")
        .body("null");
    let (status, body) = server.call(connect).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}
