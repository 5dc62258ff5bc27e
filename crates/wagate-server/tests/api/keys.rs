//! API keys: made by an admin with a secret shown once, scoped, limited to sessions, expiring,
//! revocable; their last use is recorded.

use reqwest::{Method, StatusCode};
use serde_json::json;

use wagate_core::{ApiKey, KeyId, OrgId, Scope};

use crate::common::{eventually, TestServer};

#[tokio::test]
async fn a_key_is_shown_once_opens_its_organization_and_stops_when_revoked() {
    let server = TestServer::start_with(|config| config.auth.last_used_flush_ms = common_flush()).await;
    server.create_org("acme", json!({})).await;
    let (status, created) = server
        .post(
            "/v1/keys",
            json!({ "name": "crm", "org_id": "acme", "scopes": ["sessions:manage", "sessions:manage"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("wgk_") && secret.len() > 40, "{secret}");
    assert_eq!(created["scopes"], json!(["sessions:manage"]));
    assert_eq!(created["org_id"], "acme");
    assert!(created["last_used_at"].is_null());
    let id = created["id"].as_str().unwrap().to_owned();

    // Listed without its secret.
    let (_, list) = server.get("/v1/keys").await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(!list.to_string().contains(&secret));
    let (_, shown) = server.get(&format!("/v1/keys/{id}")).await;
    assert!(shown.get("secret").is_none(), "{shown}");

    let acme = server.with_key(&secret);
    let (status, body) = acme.post("/v1/sessions", json!({ "id": "s1", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["org_id"], "acme");
    // Its last use is written in a batch, shortly after.
    eventually(|| async {
        let (_, shown) = server.get(&format!("/v1/keys/{id}")).await;
        shown["last_used_at"].is_string().then_some(())
    })
    .await;

    let (status, revoked) = server.call(server.request(Method::DELETE, &format!("/v1/keys/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = acme.get("/v1/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("revoked"), "{body}");
    let (status, _) = server.with_key("wgk_not-a-key").get("/v1/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn common_flush() -> std::num::NonZeroU64 {
    crate::common::nz(20u64)
}

#[tokio::test]
async fn a_key_without_the_scope_gets_403_naming_it() {
    let server = TestServer::start().await;
    server.create_session("s1").await;
    let key = server.create_key("default", &["sessions:read"], None).await;
    let reader = server.with_key(&key);
    assert_eq!(reader.get("/v1/sessions/s1").await.0, StatusCode::OK);
    let (status, body) = reader.post("/v1/sessions/s1/connect", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["scope"], "sessions:manage");
    let (status, body) = reader.get("/v1/keys").await;
    assert_eq!((status, body["error"]["details"]["scope"].as_str()), (StatusCode::FORBIDDEN, Some("admin")));
}

#[tokio::test]
async fn an_organization_admin_manages_only_its_own_keys() {
    let server = TestServer::start().await;
    server.create_org("a", json!({})).await;
    server.create_org("b", json!({})).await;
    let admin_a_key = server.create_key("a", &["admin"], None).await;
    let admin_a = server.with_key(&admin_a_key);
    let b_key = server.create_key("b", &["messages:read"], None).await;
    let (_, list) = server.get("/v1/keys").await;
    let b_id = list["data"].as_array().unwrap().iter().find(|k| k["org_id"] == "b").unwrap()["id"].clone();

    let (status, made) = admin_a.post("/v1/keys", json!({ "name": "x", "scopes": ["messages:send"] })).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["org_id"], "a");
    let (status, body) =
        admin_a.post("/v1/keys", json!({ "name": "x", "org_id": "b", "scopes": ["admin"] })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("org_not_found")));
    let (_, mine) = admin_a.get("/v1/keys").await;
    assert!(mine["data"].as_array().unwrap().iter().all(|k| k["org_id"] == "a"), "{mine}");
    let b_id = b_id.as_str().unwrap();
    assert_eq!(admin_a.get(&format!("/v1/keys/{b_id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        admin_a.call(Method::DELETE, &format!("/v1/keys/{b_id}"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.with_key(&b_key).get("/v1/events").await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_key_requests_get_clear_errors() {
    let server = TestServer::start().await;
    let cases = [
        (json!({ "name": "", "scopes": ["admin"] }), "name"),
        (json!({ "name": "k", "scopes": [] }), "scopes"),
        (json!({ "name": "k", "scopes": ["admin"], "expires_at": "2001-01-01T00:00:00Z" }), "expires_at"),
        (json!({ "name": "k", "scopes": ["admin"], "sessions": ["nope"] }), "sessions[0]"),
    ];
    for (body, field) in cases {
        let (status, answer) = server.post("/v1/keys", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{body}: {answer}");
    }
    let (status, answer) = server.post("/v1/keys", json!({ "name": "k", "scopes": ["root"] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
}

/// The SHA-256 of a secret in hex: all the store keeps of a key.
fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

#[tokio::test]
async fn only_the_hash_of_a_secret_is_kept_and_an_expired_key_opens_nothing() {
    let server = TestServer::start().await;
    let store = server.server().store();
    let secret = server.create_key("default", &["sessions:read"], None).await;
    let kept = store.find_key(&secret_hash(&secret)).await.unwrap().expect("found by the hash of its secret");
    assert!(store.find_key(&secret).await.unwrap().is_none());
    assert_eq!(kept.scopes, [Scope::SessionsRead]);

    let now = chrono::Utc::now();
    let expired = ApiKey {
        id: KeyId::generate(),
        org_id: OrgId::default_org(),
        name: "old".into(),
        scopes: vec![Scope::SessionsRead],
        sessions: None,
        created_at: now - chrono::Duration::hours(2),
        expires_at: Some(now - chrono::Duration::hours(1)),
        last_used_at: None,
        revoked_at: None,
    };
    store.create_key(&expired, &secret_hash("wgk_expired")).await.unwrap();
    let (status, body) = server.with_key("wgk_expired").get("/v1/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
    assert_eq!(server.with_key(&secret).get("/v1/sessions").await.0, StatusCode::OK);
}
