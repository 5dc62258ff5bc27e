//! The audit log: every call that changes something and every refused authentication, with
//! who, from where, what and the answer; never a body or a secret.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{eventually, nz, TestServer};

/// The audit log as `caller` reads it with `query`, once it holds at least `count` entries.
async fn audit(server: &TestServer, key: Option<&str>, query: &str, count: usize) -> Vec<Value> {
    eventually(|| async {
        let path = format!("/v1/audit{query}");
        let (status, body) = match key {
            Some(key) => server.with_key(key).get(&path).await,
            None => server.get(&path).await,
        };
        assert_eq!(status, StatusCode::OK, "{body}");
        let data = body["data"].as_array().unwrap().clone();
        (data.len() >= count).then_some(data)
    })
    .await
}

#[tokio::test]
async fn changes_and_refused_authentications_are_recorded_without_bodies() {
    let server = TestServer::start().await;
    server.create_org("a", json!({})).await;
    let admin_a = server.create_key("a", &["admin"], None).await;
    let reader_a = server.create_key("a", &["sessions:read"], None).await;
    let a = server.with_key(&admin_a);
    let (status, _) =
        a.post("/v1/sessions", json!({ "id": "s1", "connector": "sim", "name": "secret-name" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.with_key(&reader_a).post("/v1/sessions/s1/connect", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.with_key("wgk_wrong").get("/v1/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Reads that succeed are not recorded.
    assert_eq!(a.get("/v1/sessions/s1").await.0, StatusCode::OK);

    let entries = audit(&server, None, "?route=/v1/sessions", 1).await;
    let created = entries.iter().find(|e| e["org_id"] == "a").expect("A's creation");
    assert_eq!(created["actor_kind"], "key");
    assert!(created["actor_id"].as_str().unwrap().starts_with("key_"), "{created}");
    assert_eq!((created["method"].as_str(), created["status"].as_u64()), (Some("POST"), Some(201)));
    assert_eq!(created["source"], "127.0.0.1");
    assert!(created["request_id"].is_string(), "{created}");

    let refused = audit(&server, None, "?status=403", 1).await;
    assert_eq!(refused[0]["route"], "/v1/sessions/{id}/connect");
    assert_eq!(refused[0]["target"], json!({ "id": "s1" }));
    let anonymous = audit(&server, None, "?status=401", 1).await;
    assert_eq!(
        (anonymous[0]["actor_kind"].as_str(), anonymous[0]["method"].as_str()),
        (Some("anonymous"), Some("GET"))
    );

    let all = audit(&server, None, "", 1).await;
    let text = json!(all).to_string();
    assert!(
        !text.contains("secret-name") && !text.contains(&admin_a) && !text.contains("wgk_wrong"),
        "{text}"
    );
    assert!(!all.iter().any(|e| e["method"] == "GET" && e["status"] == 200), "{text}");

    // An organization's admin reads its own entries only; pages go back by `next_before`.
    let own = audit(&server, Some(&admin_a), "", 2).await;
    assert!(own.iter().all(|e| e["org_id"] == "a"), "{own:?}");
    let (_, page) = a.get("/v1/audit?limit=1").await;
    let before = page["next_before"].as_str().expect("a next page").to_owned();
    let (_, next) = a.get(&format!("/v1/audit?limit=1&before={before}")).await;
    assert_ne!(next["data"][0]["id"], page["data"][0]["id"]);
    let (status, body) = server.with_key(&reader_a).get("/v1/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn entries_older_than_the_retention_are_deleted() {
    let server = TestServer::start_with(|config| {
        config.audit.retention_ms = 1;
        config.audit.retention_sweep_ms = nz(20u64);
    })
    .await;
    let (status, _) = server.call(server.request(Method::DELETE, "/v1/sessions/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    eventually(|| async {
        let (_, body) = server.get("/v1/audit").await;
        body["data"].as_array().unwrap().is_empty().then_some(())
    })
    .await;
}
