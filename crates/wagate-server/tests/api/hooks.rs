//! Trigger hooks: a secret URL sends to fixed recipients without an API key, rate-limited,
//! until revoked.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{nz, TestServer};

/// Calls a hook as a stranger would: no API key.
async fn call(
    server: &TestServer,
    path: &str,
    body: reqwest::Body,
    content_type: &str,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_hook_sends_its_text_to_its_recipients_until_revoked() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let (status, hook) = server
        .post(
            "/v1/sessions/alice/hooks",
            json!({ "to": ["15557770001", "+1 555 777 0002"], "description": "CI" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let path = hook["path"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/hooks/") && path.len() > 40, "{path}");
    assert!(hook["url"].as_str().unwrap().ends_with(&path));

    let (status, sent) =
        call(&server, &path, json!({ "text": "Build 512 failed" }).to_string().into(), "application/json")
            .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    for message in messages {
        let read = server.wait_for_message_status(message["id"].as_str().unwrap(), "read").await;
        assert_eq!(read["text"]["body"], "Build 512 failed");
    }
    // A plain-text body is the text, as `curl -d` sends it.
    let (status, sent) = call(&server, &path, "deploy done".into(), "text/plain").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let (_, first) =
        server.get(&format!("/v1/messages/{}", sent["messages"][0]["id"].as_str().unwrap())).await;
    assert_eq!(first["text"]["body"], "deploy done");
    let (status, error) =
        call(&server, &path, json!({ "text": "  " }).to_string().into(), "application/json").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");

    // Listed without its URL; revoked, it sends nothing.
    let (_, list) = server.get("/v1/sessions/alice/hooks").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("path").is_none() && list["data"][0]["last_used_at"].is_string());
    let id = hook["id"].as_str().unwrap();
    let (status, _) =
        server.call(server.request(Method::DELETE, &format!("/v1/sessions/alice/hooks/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, error) = call(&server, &path, "again".into(), "text/plain").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["error"]["code"], "hook_not_found");
}

#[tokio::test]
async fn a_template_hook_fills_in_what_is_posted_and_calls_are_rate_limited() {
    let server = TestServer::start_with(|c| c.api.hook_calls_per_minute = nz(2)).await;
    server.link("alice", "15550001111").await;
    server
        .post(
            "/v1/templates",
            json!({ "name": "build", "content": { "type": "text", "text": { "body": "Build {{n}}: {{result}}" } } }),
        )
        .await;
    let (status, hook) =
        server.post("/v1/sessions/alice/hooks", json!({ "to": "15557770001", "template": "build" })).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let path = hook["path"].as_str().unwrap().to_owned();

    let body = json!({ "params": { "n": 513, "result": "green" } }).to_string();
    let (status, sent) = call(&server, &path, body.into(), "application/json").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let message = server.wait_for_message_status(sent["messages"][0]["id"].as_str().unwrap(), "read").await;
    assert_eq!(message["text"]["body"], "Build 513: green");
    let body = json!({ "params": { "n": 514 } }).to_string();
    let (status, error) = call(&server, &path, body.into(), "application/json").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["details"]["field"], "template.params.result");

    // Two calls a minute: the third waits.
    let response =
        reqwest::Client::new().post(format!("{}{path}", server.base)).body("x").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));

    for (body, field) in [
        (json!({ "to": "15557770001", "template": "nope" }), "template"),
        (json!({ "to": [] }), "to"),
        (json!({ "to": "not a number" }), "to"),
    ] {
        let (status, error) = server.post("/v1/sessions/alice/hooks", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(error["error"]["details"]["field"], field);
    }
    let (status, _) = call(&server, "/hooks/not-a-token", "x".into(), "text/plain").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_image_template_hook_sends_the_posted_params_in_the_caption() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let image = json!({ "data": crate::common::png_base64(), "caption": "Build {{n}} failed" });
    let (status, body) = server
        .post("/v1/templates", json!({ "name": "red", "content": { "type": "image", "image": image } }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, hook) =
        server.post("/v1/sessions/alice/hooks", json!({ "to": "15557770001", "template": "red" })).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let path = hook["path"].as_str().unwrap().to_owned();

    let body = json!({ "params": { "n": 515 } }).to_string();
    let (status, sent) = call(&server, &path, body.into(), "application/json").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let message = server.wait_for_message_status(sent["messages"][0]["id"].as_str().unwrap(), "read").await;
    assert_eq!(message["type"], "image", "{message}");
    assert_eq!(message["image"]["caption"], "Build 515 failed");
    assert_eq!(message["image"]["mime_type"], "image/png");
}
