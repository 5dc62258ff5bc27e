//! Organizations are isolated: generated from the OpenAPI document, every operation that
//! takes an id answers a key of organization B `404` for organization A's resource, as if it
//! did not exist; a key limited to a session cannot act on another; a read-only key changes
//! nothing; and A's events reach B through no event list, stream or webhook.

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{eventually, png_base64, Caller, TestServer};
use crate::receiver::Receiver;

/// Organization A's resources, one of each kind a path can name.
struct Resources {
    message: String,
    webhook: String,
    delivery: String,
    campaign: String,
    hook: String,
    media: String,
    key: String,
}

const PHONE: &str = "15550001111";
const CONTACT: &str = "15557770001";

/// Organization A with sessions `a1` (linked, with a message, a campaign, a hook) and `a2`, a
/// webhook with a delivery, a template `welcome` and a media file; answers them and A's
/// admin key.
async fn organization_a(server: &TestServer) -> (Resources, String) {
    server.create_org("a", json!({})).await;
    let admin = server.create_key("a", &["admin"], None).await;
    let a = server.with_key(&admin);
    for id in ["a1", "a2"] {
        let (status, body) = a.post("/v1/sessions", json!({ "id": id, "connector": "sim" })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Linking by QR is the operator's (the sim network's scan); the rest is A's own doing.
    server.link("a1", PHONE).await;
    let receiver = Receiver::start().await;
    let (status, webhook) = a.post("/v1/webhooks", json!({ "url": receiver.url, "events": ["*"] })).await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    let webhook = webhook["id"].as_str().unwrap().to_owned();
    let (status, message) = a
        .post("/v1/sessions/a1/messages", json!({ "to": CONTACT, "type": "text", "text": { "body": "hi" } }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{message}");
    let message = message["id"].as_str().unwrap().to_owned();
    let (status, body) = a
        .post(
            "/v1/templates",
            json!({ "name": "welcome", "content": { "type": "text", "text": { "body": "Hi {{name}}" } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, hook) = a.post("/v1/sessions/a1/hooks", json!({ "to": [CONTACT] })).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, campaign) = a
        .post(
            "/v1/sessions/a1/campaigns",
            json!({ "name": "c", "content": { "type": "text", "text": { "body": "hey" } }, "recipients": [{ "to": CONTACT }] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let png = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(png_base64()).unwrap()
    };
    let (status, media) = server.call(a.request(Method::POST, "/v1/media").body(png)).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    assert_eq!(media["org_id"], "a");
    let media = media["id"].as_str().unwrap().to_owned();
    let delivery = eventually(|| async {
        let (_, body) = a.get(&format!("/v1/webhooks/{webhook}/deliveries")).await;
        body["data"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let (_, keys) = a.get("/v1/keys").await;
    let key = keys["data"][0]["id"].as_str().unwrap().to_owned();
    let resources = Resources {
        message,
        webhook,
        delivery,
        campaign: campaign["id"].as_str().unwrap().to_owned(),
        hook: hook["id"].as_str().unwrap().to_owned(),
        media,
        key,
    };
    (resources, admin)
}

/// Every operation of the document: path, method, and the example of its JSON body (if any).
async fn operations(server: &TestServer) -> Vec<(String, Method, Option<Value>, Value)> {
    let document: Value =
        reqwest::get(format!("{}/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let content = &operation["requestBody"]["content"]["application/json"];
            let example = match content["schema"]["$ref"].as_str() {
                Some(reference) => {
                    let name = reference.trim_start_matches("#/components/schemas/");
                    document["components"]["schemas"][name]["example"].clone()
                }
                None => content["example"].clone(),
            };
            let body = (!content.is_null()).then(|| if example.is_null() { json!({}) } else { example });
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            found.push((path.clone(), method, body, operation.clone()));
        }
    }
    found
}

/// The path with A's resources in it; `session` fills a session's `{id}`.
fn concrete(path: &str, session: &str, a: &Resources) -> String {
    let id = if path.starts_with("/v1/sessions/") {
        session
    } else if path.starts_with("/v1/messages/") {
        &a.message
    } else if path.starts_with("/v1/webhooks/") {
        &a.webhook
    } else if path.starts_with("/v1/media/") {
        &a.media
    } else if path.starts_with("/v1/keys/") {
        &a.key
    } else {
        "a"
    };
    path.replace("{id}", id)
        .replace("{delivery_id}", &a.delivery)
        .replace("{campaign_id}", &a.campaign)
        .replace("{hook_id}", &a.hook)
        .replace("{name}", "welcome")
        .replace("{chat}", CONTACT)
}

/// Operations only the gateway's admin key may call (organizations, cluster nodes): every
/// key is refused them with 403 whatever it names, so they tell nothing about A.
fn operator_only(path: &str) -> bool {
    path.starts_with("/v1/orgs")
        || path.starts_with("/v1/cluster")
        || path == "/v1/sim/scan"
        || path == "/v1/sim/pair"
}

/// Not behind a key at all (health, metrics, a trigger hook's secret URL).
fn public(operation: &Value) -> bool {
    operation["security"]
        .as_array()
        .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|o| o.is_empty())))
}

async fn call(caller: &Caller<'_>, method: &Method, path: &str, body: &Option<Value>) -> (StatusCode, Value) {
    let mut request = caller.request(method.clone(), path);
    if let Some(body) = body {
        request = request.json(body);
    }
    // Streams answer with headers at once; only the status matters here.
    let response = request.send().await.unwrap();
    let status = response.status();
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|t| t.to_str().unwrap_or("").starts_with("text/event-stream"));
    let body = if streaming { Value::Null } else { response.json().await.unwrap_or(Value::Null) };
    (status, body)
}

#[tokio::test]
async fn a_key_of_another_organization_gets_404_for_every_resource_on_every_route() {
    let server = TestServer::start().await;
    let (a, _) = organization_a(&server).await;
    server.create_org("b", json!({})).await;
    let b_key = server.create_key("b", &["admin"], None).await;
    let b = server.with_key(&b_key);

    let mut tried = 0;
    for (path, method, body, operation) in operations(&server).await {
        if !path.contains('{') || !path.starts_with("/v1/") || operator_only(&path) || public(&operation) {
            continue;
        }
        let target = concrete(&path, "a1", &a);
        let (status, answer) = call(&b, &method, &target, &body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {target} as B: {answer}");
        assert_ne!(answer["error"]["code"], "route_not_found", "{method} {target}");
        tried += 1;
    }
    assert!(tried >= 35, "only {tried} operations take an id");

    // Ids in bodies and queries too.
    let named_in_bodies = [
        ("/v1/webhooks", json!({ "url": "https://example.com/h", "session_id": "a1" })),
        (
            "/v1/sim/inbound",
            json!({ "session_id": "a1", "from": CONTACT, "type": "text", "text": { "body": "x" } }),
        ),
        ("/v1/sim/faults", json!({ "session_id": "a1", "fail_sends": 1 })),
    ];
    for (path, body) in named_in_bodies {
        let (status, answer) = b.post(path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "POST {path} as B: {answer}");
    }
    let (status, answer) =
        b.post("/v1/keys", json!({ "name": "k", "scopes": ["admin"], "sessions": ["a1"] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, answer) = b
        .post(
            "/v1/sessions/b1/messages",
            json!({ "to": CONTACT, "type": "image", "image": { "media_id": a.media } }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    // B's lists hold none of A's.
    for list in ["/v1/sessions", "/v1/webhooks", "/v1/templates", "/v1/keys", "/v1/events"] {
        let (status, answer) = b.get(list).await;
        assert_eq!(status, StatusCode::OK, "{list}: {answer}");
        // B's own admin key is the only thing of B's yet.
        let data = answer["data"].as_array().unwrap();
        assert!(data.iter().all(|item| item["org_id"] == "b"), "{list}: {answer}");
        assert_eq!(data.len(), usize::from(list == "/v1/keys"), "{list}: {answer}");
    }
    // B may use the names A uses.
    let (status, answer) = b
        .post(
            "/v1/templates",
            json!({ "name": "welcome", "content": { "type": "text", "text": { "body": "B" } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test]
async fn a_key_limited_to_a_session_cannot_act_on_another() {
    let server = TestServer::start().await;
    let (a, _) = organization_a(&server).await;
    let scopes = ["sessions:manage", "messages:send", "messages:read", "webhooks:manage", "templates:manage"];
    let limited_key = server.create_key("a", &scopes, Some(&["a1"])).await;
    let limited = server.with_key(&limited_key);

    let mut tried = 0;
    for (path, method, body, _) in operations(&server).await {
        if !path.starts_with("/v1/sessions/{id}") {
            continue;
        }
        let target = concrete(&path, "a2", &a);
        let (status, answer) = call(&limited, &method, &target, &body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {target} limited to a1: {answer}");
        tried += 1;
    }
    assert!(tried >= 20, "only {tried} session operations");
    let (_, sessions) = limited.get("/v1/sessions").await;
    let ids: Vec<&str> =
        sessions["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a1"]);
    assert_eq!(limited.get("/v1/sessions/a1").await.0, StatusCode::OK);
    assert_eq!(limited.get(&format!("/v1/messages/{}", a.message)).await.0, StatusCode::OK);
    // A webhook for every session of the organization would show it a2's events.
    let (status, answer) = limited.post("/v1/webhooks", json!({ "url": "https://example.com/h" })).await;
    assert_eq!(
        (status, answer["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("session_id"))
    );
    let (_, events) = limited.get("/v1/events?limit=1000").await;
    let events = events["data"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["session_id"] == "a1"), "{events:?}");
}

#[tokio::test]
async fn a_read_only_key_cannot_change_anything() {
    let server = TestServer::start().await;
    let (a, admin) = organization_a(&server).await;
    let reader_key = server.create_key("a", &["sessions:read", "messages:read"], None).await;
    let reader = server.with_key(&reader_key);
    let a = (a, server.with_key(&admin));
    let lists = [
        "/v1/sessions",
        "/v1/webhooks",
        "/v1/templates",
        "/v1/keys",
        "/v1/sessions/a1/hooks",
        "/v1/sessions/a1/campaigns",
    ];
    let mut before = Vec::new();
    for list in lists {
        before.push(a.1.get(list).await.1);
    }
    let (a, admin_of_a) = a;

    let mut tried = 0;
    for (path, method, body, operation) in operations(&server).await {
        // Checking numbers is a question to WhatsApp, not a change: a reader may ask it.
        let reads = operation["operationId"] == "contacts_check";
        if method == Method::GET || reads || !path.starts_with("/v1/") || public(&operation) {
            continue;
        }
        let target = concrete(&path, "a1", &a);
        let (status, answer) = call(&reader, &method, &target, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {target} read-only: {answer}");
        tried += 1;
    }
    assert!(tried >= 30, "only {tried} changing operations");
    for (list, before) in lists.into_iter().zip(before) {
        let (_, after) = admin_of_a.get(list).await;
        // Only what the organization's own traffic moves (campaign progress, key use) may differ.
        let ids = |v: &Value| -> Vec<Value> {
            v["data"].as_array().unwrap().iter().map(|x| x["id"].clone()).collect()
        };
        assert_eq!(ids(&after), ids(&before), "{list} changed");
    }
}

/// Reads SSE frames as `caller` from the start of the log until an event of `until_session`.
async fn sse_until(caller: &Caller<'_>, until_session: &str) -> Vec<Value> {
    let mut response = caller.request(Method::GET, "/v1/events/stream?after=evt_0").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut buffer = String::new();
    let mut events = Vec::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let data: String =
                block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            if data.is_empty() {
                continue;
            }
            let event: Value = serde_json::from_str(&data).unwrap();
            let done = event["session_id"] == until_session;
            events.push(event);
            if done {
                return events;
            }
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), response.chunk())
            .await
            .expect("a frame within 10 s")
            .unwrap()
            .expect("stream open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn events_streams_and_webhook_deliveries_of_one_organization_never_reach_another() {
    let server = TestServer::start().await;
    server.create_org("b", json!({})).await;
    let b_key = server.create_key("b", &["admin"], None).await;
    let b = server.with_key(&b_key);
    let receiver = Receiver::start().await;
    let (status, webhook) = b.post("/v1/webhooks", json!({ "url": receiver.url, "events": ["*"] })).await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    // B follows the live stream while A works.
    let live = {
        let url = format!("{}/v1/events/ws?types=session.*", server.base.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {b_key}").parse().unwrap());
        tokio_tungstenite::connect_async(request).await.expect("WebSocket opens").0
    };

    organization_a(&server).await;
    let (status, body) = b.post("/v1/sessions", json!({ "id": "b1", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, listed) = b.get("/v1/events?limit=1000").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");

    // The WebSocket's first event is B's, though A's came first.
    let (_, mut source) = live.split();
    let first = loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), source.next())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(first["session_id"], "b1", "{first}");
    // Replayed from the log: only B's.
    let replayed = sse_until(&b, "b1").await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    let (_, listed) = b.get("/v1/events?limit=1000").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    // B's webhook got B's event and nothing of A's.
    let hits = receiver.wait_for(1).await;
    let all = server.all_events().await;
    assert!(all.len() > 5, "A's events are in the log");
    let delivered: Vec<Value> = hits.iter().map(|h| h.event()).collect();
    assert!(delivered.iter().all(|e| e["session_id"] == "b1"), "{delivered:?}");
    let webhook = webhook["id"].as_str().unwrap();
    let (_, deliveries) = b.get(&format!("/v1/webhooks/{webhook}/deliveries")).await;
    assert_eq!(deliveries["data"].as_array().unwrap().len(), 1, "{deliveries}");
    // A replay of the whole log to B's webhook queues only B's events.
    let (status, replayed) =
        b.post(&format!("/v1/webhooks/{webhook}/replay"), json!({ "since": "evt_0" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    assert_eq!(replayed["queued"], 1, "{replayed}");
}
