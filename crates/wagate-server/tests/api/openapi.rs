//! The OpenAPI document describes every route, its examples are requests the API accepts,
//! and the docs UI is served from the binary.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestServer;

async fn document(server: &TestServer) -> Value {
    let response = reqwest::get(format!("{}/openapi.json", server.base)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn operations(document: &Value) -> Vec<(String, Method, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            found.push((path.clone(), method, operation.clone()));
        }
    }
    found
}

#[tokio::test]
async fn every_documented_route_exists_and_the_docs_ui_is_served() {
    let server = TestServer::start().await;
    let document = document(&server).await;
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert!(schemes["bearer"]["description"].as_str().is_some_and(|d| d.contains("JWT")), "{schemes}");
    assert_eq!(schemes["api_key"]["name"], "X-Api-Key");
    assert_eq!(
        document["webhooks"]["event"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Event"
    );
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());

    let operations = operations(&document);
    assert!(operations.len() >= 30, "{} operations", operations.len());
    let mut ids = std::collections::HashSet::new();
    for (path, method, operation) in &operations {
        // What OpenAPI validators check: unique operation ids, described responses, and every
        // path parameter declared as one.
        let id = operation["operationId"].as_str().unwrap().to_owned();
        assert!(ids.insert(id), "{method} {path}: duplicate operation id");
        let responses = operation["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{method} {path} has no responses");
        assert!(
            responses.values().all(|r| shared_response(&document, r)["description"].is_string()),
            "{method} {path}: undescribed response"
        );
        let declared: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        for name in &declared {
            assert!(path.contains(&format!("{{{name}}}")), "{method} {path}: `{name}` is not in the path");
        }
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            assert!(declared.contains(&name), "{method} {path}: {segment} is not declared");
        }
        let concrete = path.replace("{delivery_id}", "dlv_1").replace("{id}", "nope");
        let mut request = server.request(method.clone(), &concrete);
        if *method == Method::POST || *method == Method::PATCH {
            request = request.json(&json!({}));
        }
        // Streams answer at once with headers; the body is not read.
        let response = request.send().await.unwrap();
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(
                body["error"]["code"], "route_not_found",
                "{method} {path} is documented but not served"
            );
        }
    }

    let docs = reqwest::get(format!("{}/docs/", server.base)).await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().to_lowercase().contains("swagger"));
}

#[tokio::test]
async fn the_request_examples_of_the_document_are_accepted() {
    let server = TestServer::start().await;
    server.create_session("alice").await;
    server.create_session("bob").await;
    let (webhook, _) = server.create_webhook("https://example.com/wagate", json!(["*"])).await;
    let document = document(&server).await;

    let mut tried = 0;
    for (path, method, operation) in operations(&document) {
        let content = &operation["requestBody"]["content"]["application/json"];
        let example = match content["schema"]["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                document["components"]["schemas"][name]["example"].clone()
            }
            None => content["example"].clone(),
        };
        if example.is_null() {
            continue;
        }
        let id = if path.starts_with("/v1/webhooks/") { webhook.as_str() } else { "alice" };
        let concrete = path.replace("{id}", id).replace("{name}", "welcome").replace("{chat}", "15550002222");
        let (status, body) = server.call(server.request(method.clone(), &concrete).json(&example)).await;
        assert!(
            ![StatusCode::BAD_REQUEST, StatusCode::UNSUPPORTED_MEDIA_TYPE, StatusCode::UNPROCESSABLE_ENTITY]
                .contains(&status),
            "the example of {method} {path} was refused: {status} {body}"
        );
        tried += 1;
    }
    assert!(tried >= 9, "only {tried} examples");
}

/// The response itself, or the shared one of the document it refers to.
fn shared_response<'a>(document: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/responses/")) {
        Some(name) => &document["components"]["responses"][name],
        None => response,
    }
}

/// The schema `$ref` points to.
fn resolve<'a>(document: &'a Value, reference: &Value) -> &'a Value {
    let name =
        reference.as_str().and_then(|r| r.strip_prefix("#/components/schemas/")).expect("a schema $ref");
    let schema = &document["components"]["schemas"][name];
    assert!(schema.is_object(), "{name} is not in the document");
    schema
}

/// The properties a schema declares, and those it requires, through `$ref` and `allOf`; the
/// branches of a `oneOf` (a message's content kinds) add what they declare, not what they require.
fn properties(
    document: &Value,
    schema: &Value,
    declared: &mut std::collections::BTreeSet<String>,
    required: &mut std::collections::BTreeSet<String>,
) {
    if schema.get("$ref").is_some() {
        return properties(document, resolve(document, &schema["$ref"]), declared, required);
    }
    declared.extend(schema["properties"].as_object().into_iter().flat_map(|p| p.keys().cloned()));
    required.extend(
        schema["required"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(String::from)),
    );
    for part in schema["allOf"].as_array().into_iter().flatten() {
        properties(document, part, declared, required);
    }
    for branch in schema["oneOf"].as_array().into_iter().flatten() {
        properties(document, branch, declared, &mut std::collections::BTreeSet::new());
    }
}

#[tokio::test]
async fn every_event_has_a_schema_for_its_type_that_describes_its_data() {
    let server = TestServer::start().await;
    let document = document(&server).await;
    let event = &document["components"]["schemas"]["Event"];
    let variants = event["oneOf"].as_array().expect("Event is a oneOf");
    let mapping = event["discriminator"]["mapping"].as_object().expect("a discriminator on type");
    assert_eq!(event["discriminator"]["propertyName"], "type");
    assert_eq!(variants.len(), mapping.len());
    for (kind, reference) in mapping {
        let envelope = resolve(&document, reference);
        assert_eq!(envelope["properties"]["type"]["enum"], json!([kind]), "{kind}");
        assert!(variants.iter().any(|v| &v["$ref"] == reference), "{kind} is not among the variants");
    }

    // Events of every type a session and a message go through, as a webhook receiver gets them.
    server.link("alice", "15550001111").await;
    let sent = server.send_text("alice", "15557770001", "hi").await;
    server.wait_for_message_status(sent["id"].as_str().unwrap(), "read").await;
    let (status, body) = server
        .post(
            "/v1/sim/inbound",
            json!({ "session_id": "alice", "from": "15557770001", "type": "text", "text": { "body": "yo" } }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = server
        .post(
            "/v1/sessions/alice/campaigns",
            json!({ "name": "c", "content": { "type": "text", "text": { "body": "hey" } }, "recipients": [{ "to": "15557770002" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let events = server.all_events().await;
    let mut seen = std::collections::BTreeSet::new();
    for event in &events {
        let kind = event["type"].as_str().expect("type");
        seen.insert(kind.to_owned());
        let envelope = resolve(&document, &mapping[kind]);
        let required: Vec<&str> =
            envelope["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        assert_eq!(required, ["id", "type", "session_id", "created_at", "data"]);
        let data_schema = resolve(&document, &envelope["properties"]["data"]["$ref"]);
        let mut declared = std::collections::BTreeSet::new();
        let mut required = std::collections::BTreeSet::new();
        properties(&document, data_schema, &mut declared, &mut required);
        let data = event["data"].as_object().expect("data");
        for field in data.keys() {
            assert!(declared.contains(field), "{kind}: `{field}` is not documented");
        }
        for field in &required {
            assert!(data.contains_key(field), "{kind}: required `{field}` is missing from {event}");
        }
    }
    for kind in ["session.status", "session.qr", "message.status", "message.received", "campaign.status"] {
        assert!(seen.contains(kind), "no {kind} event was produced");
    }
}

/// What client generators need: error codes as a closed list, one shared 401 answer, and a
/// `Message` made of object schemas only (a flattened `oneOf` is refused by some).
#[tokio::test]
async fn the_document_gives_generated_clients_error_codes_one_401_and_an_object_message() {
    let server = TestServer::start().await;
    let document = document(&server).await;
    let schemas = &document["components"]["schemas"];

    let codes = schemas["ErrorCode"]["enum"].as_array().expect("ErrorCode is an enum");
    assert_eq!(schemas["ErrorDetail"]["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode");
    let unauthenticated = reqwest::get(format!("{}/v1/sessions", server.base)).await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = server.get("/v1/sessions/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for answer in [unauthenticated.json::<Value>().await.unwrap(), body] {
        assert!(codes.contains(&answer["error"]["code"]), "{answer} has a code outside ErrorCode");
    }

    let unauthorized = &document["components"]["responses"]["Unauthorized"];
    assert_eq!(unauthorized["description"], "No or wrong API key");
    assert_eq!(
        unauthorized["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    let mut keyed = 0;
    for (path, method, operation) in operations(&document) {
        if operation["security"] == json!([{}]) {
            assert!(
                operation["responses"].get("401").is_none(),
                "{method} {path} takes no key but can answer 401"
            );
            continue;
        }
        assert_eq!(
            operation["responses"]["401"],
            json!({ "$ref": "#/components/responses/Unauthorized" }),
            "{method} {path}"
        );
        keyed += 1;
    }
    assert!(keyed >= 50, "only {keyed} routes take a key");

    let message = &schemas["Message"];
    let parts = message["allOf"].as_array().expect("Message is its content and its other fields");
    for part in parts {
        let part = if part.get("$ref").is_some() { resolve(&document, &part["$ref"]) } else { part };
        assert_eq!(part["type"], "object", "{part}");
        assert!(part.get("oneOf").is_none(), "{part}");
    }
    let content = resolve(&document, &parts[0]["$ref"]);
    let kinds = resolve(&document, &content["properties"]["type"]["$ref"])["enum"].as_array().unwrap();
    assert_eq!(content["required"], json!(["type"]));
    for kind in kinds {
        assert!(content["properties"][kind.as_str().unwrap()].is_object(), "no `{kind}` property");
    }

    // A message as the API sends it has only the fields the document declares.
    server.link("alice", "15550001111").await;
    let sent = server.send_text("alice", "15557770001", "hi").await;
    let mut declared = std::collections::BTreeSet::new();
    let mut required = std::collections::BTreeSet::new();
    properties(&document, message, &mut declared, &mut required);
    for field in sent.as_object().unwrap().keys() {
        assert!(declared.contains(field), "`{field}` is not documented");
    }
    for field in &required {
        assert!(sent.get(field).is_some(), "required `{field}` is missing from {sent}");
    }
}
