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
            responses.values().all(|r| r["description"].is_string()),
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

#[test]
fn no_route_is_added_without_its_description() {
    // Routes are added only through utoipa's `routes!`, which registers the description with
    // the handler; a plain axum `.route(` would add an undescribed one.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("lib.rs"), src.join("metrics.rs")];
    for entry in std::fs::read_dir(src.join("api")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in [".route(", ".route_service(", ".nest_service("] {
            assert!(!text.contains(needle), "{} adds a route with `{needle}`", file.display());
        }
    }
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
        let concrete = path.replace("{id}", id).replace("{name}", "welcome");
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
