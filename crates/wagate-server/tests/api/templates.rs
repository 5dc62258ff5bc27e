//! Templates: managed by name, rendered at send time, with errors that name what is wrong.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{eventually, png_base64, TestServer};

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

#[tokio::test]
async fn an_image_template_sends_a_personal_caption() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let image = json!({ "data": png_base64(), "caption": "Hi {{name}}, order {{order}} is ready" });
    let (status, created) = server
        .post("/v1/templates", json!({ "name": "ready", "content": { "type": "image", "image": image } }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["params"], json!(["name", "order"]));
    assert_eq!(created["content"]["image"]["mime_type"], "image/png");

    let send = |params: serde_json::Value| {
        server.post(
            "/v1/sessions/alice/messages?wait=true",
            json!({ "to": "15550002222", "type": "template", "template": { "name": "ready", "params": params } }),
        )
    };
    let (status, sent) = send(json!({ "name": "Bob", "order": 42 })).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let got = eventually(|| async { server.messages("bob", "in").await.pop() }).await;
    assert_eq!(got["type"], "image", "{got}");
    assert_eq!(got["image"]["caption"], "Hi Bob, order 42 is ready");
    assert_eq!(got["image"]["sha256"], created["content"]["image"]["sha256"]);
    let (status, error) = send(json!({ "name": "Bob" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["details"]["field"], "template.params.order");

    // A place's name and address take placeholders too.
    let place = json!({ "latitude": 1.5, "longitude": 2.5, "name": "{{shop}}", "address": "{{street}}" });
    let (status, created) = server
        .post(
            "/v1/templates",
            json!({ "name": "pickup", "content": { "type": "location", "location": place } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["params"], json!(["shop", "street"]));
}

#[tokio::test]
async fn a_template_refuses_kinds_that_act_on_one_message() {
    let server = TestServer::start().await;
    for (kind, body) in [
        ("reaction", json!({ "message_id": "ABC", "emoji": "👍" })),
        ("edit", json!({ "message_id": "ABC", "body": "new" })),
        ("revoke", json!({ "message_id": "ABC" })),
    ] {
        let content = json!({ "type": kind, kind: body });
        let (status, error) = server.post("/v1/templates", json!({ "name": "x", "content": content })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"]["details"]["field"], "content.type");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "supported: text, image, video, audio, document, sticker, location, contacts, poll)"
            ),
            "{message}"
        );
    }
    let (status, error) = server
        .post(
            "/v1/templates",
            json!({ "name": "x", "content": { "type": "image", "image": { "caption": 5 } } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["details"]["field"], "content.image.caption");
}
