//! Organizations: the admin key manages them; everything a single-tenant install makes lives
//! in `default`; quotas refuse what goes past them with a clear answer.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn the_admin_key_creates_lists_changes_and_deletes_organizations() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/v1/orgs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["id"], "default", "{body}");

    let created = server.create_org("acme", json!({ "sessions": 2 })).await;
    assert_eq!(created["name"], "acme");
    assert_eq!(created["quotas"], json!({ "sessions": 2, "messages_per_day": null }));
    let (status, body) = server.post("/v1/orgs", json!({ "id": "acme" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("org_exists")));
    let (status, body) = server.post("/v1/orgs", json!({ "id": "Not Valid" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"]["field"], "id");

    let (status, body) = server
        .patch("/v1/orgs/acme", json!({ "name": "Acme Inc.", "quotas": { "messages_per_day": 5 } }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Acme Inc.");
    assert_eq!(body["quotas"], json!({ "sessions": null, "messages_per_day": 5 }));
    let (_, list) = server.get("/v1/orgs").await;
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["acme", "default"]);

    // An organization that holds something is not deleted from under it; `default` never is.
    let (status, body) =
        server.post("/v1/sessions", json!({ "id": "s1", "connector": "sim", "org_id": "acme" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["org_id"], "acme");
    let delete = |path: &str| server.call(server.request(Method::DELETE, path));
    let (status, body) = delete("/v1/orgs/acme").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("org_not_empty")));
    let (status, _) = delete("/v1/orgs/default").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(delete("/v1/sessions/s1").await.0, StatusCode::NO_CONTENT);
    assert_eq!(delete("/v1/orgs/acme").await.0, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/v1/orgs/acme").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("org_not_found")));
    let (status, body) =
        server.post("/v1/sessions", json!({ "id": "s2", "connector": "sim", "org_id": "acme" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("org_not_found")));
}

#[tokio::test]
async fn a_single_tenant_install_keeps_everything_in_the_default_organization() {
    let server = TestServer::start().await;
    let session = server.create_session("alice").await;
    assert_eq!(session["org_id"], "default");
    let (webhook, _) = server.create_webhook("https://example.com/hook", json!(["*"])).await;
    let (_, body) = server.get(&format!("/v1/webhooks/{webhook}")).await;
    assert_eq!(body["org_id"], "default");
}

#[tokio::test]
async fn only_the_admin_key_manages_organizations() {
    let server = TestServer::start().await;
    let key = server.create_key("default", &["admin"], None).await;
    let as_admin_of_default = server.with_key(&key);
    let (status, body) = as_admin_of_default.get("/v1/orgs").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );
    let (status, _) = as_admin_of_default.post("/v1/orgs", json!({ "id": "mine" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(server.get("/v1/orgs/mine").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_session_quota_refuses_one_more_session_with_403() {
    let server = TestServer::start().await;
    server.create_org("small", json!({ "sessions": 1 })).await;
    let key = server.create_key("small", &["sessions:manage"], None).await;
    let small = server.with_key(&key);
    let (status, body) = small.post("/v1/sessions", json!({ "id": "one", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["org_id"], "small");
    let (status, body) = small.post("/v1/sessions", json!({ "id": "two", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(body["error"]["details"]["quota"], "sessions");
    // Other organizations are not held to it.
    server.create_session("two").await;
    // Raising the quota makes room.
    server.patch("/v1/orgs/small", json!({ "quotas": { "sessions": 2 } })).await;
    let (status, _) = small.post("/v1/sessions", json!({ "id": "three", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_daily_message_quota_refuses_sends_past_it_with_429_until_midnight() {
    let server = TestServer::start().await;
    server.create_org("small", json!({ "messages_per_day": 2 })).await;
    let (status, body) =
        server.post("/v1/sessions", json!({ "id": "s", "connector": "sim", "org_id": "small" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.send_text("s", "15550001111", "one").await;
    server.send_text("s", "15550001111", "two").await;
    let response = server
        .request(Method::POST, "/v1/sessions/s/messages")
        .json(&json!({ "to": "15550001111", "type": "text", "text": { "body": "three" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(body["error"]["details"]["quota"], "messages_per_day");
    // A campaign counts each recipient against the same quota.
    let (status, body) = server
        .post(
            "/v1/sessions/s/campaigns",
            json!({ "name": "c", "content": { "type": "text", "text": { "body": "hi" } }, "recipients": [{ "to": "15550002222" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(server.messages("s", "out").await.len(), 2);

    // A quota raised applies to the next send at once (the node forgets the one it used).
    let (status, body) = server.patch("/v1/orgs/small", json!({ "quotas": { "messages_per_day": 3 } })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.send_text("s", "15550001111", "three").await;
    let (status, body) = server
        .post(
            "/v1/sessions/s/messages",
            json!({ "to": "15550001111", "type": "text", "text": { "body": "four" } }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}
