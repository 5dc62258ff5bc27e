//! Templates: managed by name, rendered at send time, with errors that name what is wrong.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestServer;

fn welcome(body: &str) -> serde_json::Value {
    json!({ "name": "welcome", "language": "en", "content": { "type": "text", "text": { "body": body } } })
}

#[tokio::test]
async fn a_template_send_fills_in_its_params() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    let (status, created) =
        server.post("/v1/templates", welcome("Hi {{name}}, welcome to {{ shop }}!")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["params"], json!(["name", "shop"]));

    let send = |params: serde_json::Value| {
        server.post(
            "/v1/sessions/alice/messages?wait=true",
            json!({ "to": "15557770001", "type": "template", "template": { "name": "welcome", "params": params } }),
        )
    };
    let (status, sent) = send(json!({ "name": "Ann", "shop": "Corner Books" })).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["type"], "text");
    assert_eq!(sent["text"]["body"], "Hi Ann, welcome to Corner Books!");
    assert!(matches!(sent["status"].as_str(), Some("sent" | "delivered" | "read")), "{sent}");

    let (status, error) = send(json!({ "name": "Ann" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["details"]["field"], "template.params.shop");
    let (status, error) = send(json!({ "name": ["Ann"], "shop": 1 })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["details"]["field"], "template.params.name");
    let (status, error) = server
        .post(
            "/v1/sessions/alice/messages",
            json!({ "to": "15557770001", "type": "template", "template": { "name": "nope" } }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["error"]["code"], "template_not_found");
}

#[tokio::test]
async fn templates_are_listed_updated_and_deleted_by_name() {
    let server = TestServer::start().await;
    server.post("/v1/templates", welcome("Hi {{name}}")).await;
    let (status, body) = server.post("/v1/templates", welcome("again")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "template_exists");
    for (bad, field) in [
        (json!({ "name": "Bad Name", "content": { "type": "text", "text": { "body": "x" } } }), "name"),
        (json!({ "name": "x", "content": { "type": "text", "text": { "body": " " } } }), "content.text.body"),
        (json!({ "name": "x", "content": { "type": "pigeon" } }), "content.type"),
        (json!({ "name": "x", "content": { "type": "template" } }), "content.type"),
    ] {
        let (status, body) = server.post("/v1/templates", bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["details"]["field"], field, "{bad}");
    }

    let (status, updated) = server
        .patch(
            "/v1/templates/welcome",
            json!({ "content": { "type": "text", "text": { "body": "Hello {{who}}" } }, "language": null }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((updated["params"].clone(), updated["language"].clone()), (json!(["who"]), json!(null)));
    let (_, list) = server.get("/v1/templates").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(server.get("/v1/templates/welcome").await.1["content"]["text"]["body"], "Hello {{who}}");

    let (status, _) = server.call(server.request(Method::DELETE, "/v1/templates/welcome")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/v1/templates/welcome").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "template_not_found");
}
