//! Rate limits: a small bucket per key and per organization answers 429 with `Retry-After` and
//! the `RateLimit-*` headers; the audit log shows the refused call; the admin key has none.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{eventually, nz, Caller, TestServer};

async fn statuses(caller: &Caller<'_>, count: usize) -> Vec<reqwest::Response> {
    let mut answers = Vec::new();
    for _ in 0..count {
        answers.push(caller.request(Method::GET, "/v1/sessions").send().await.unwrap());
    }
    answers
}

#[tokio::test]
async fn a_key_past_its_bucket_gets_429_with_retry_after_and_ratelimit_headers() {
    let server = TestServer::start_with(|config| {
        config.rate_limits.key_per_second = nz(1u32);
        config.rate_limits.key_burst = nz(3u32);
    })
    .await;
    let key = server.create_key("default", &["sessions:manage"], None).await;
    let caller = server.with_key(&key);
    let answers = statuses(&caller, 4).await;
    let codes: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert_eq!(codes, [200, 200, 200, 429]);
    assert_eq!(answers[0].headers()["ratelimit-limit"], "3");
    assert_eq!(answers[0].headers()["ratelimit-remaining"], "2");
    let refused = &answers[3];
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(refused.headers().contains_key("ratelimit-reset"));
    // A refused change is in the audit log.
    let (status, _) = caller.post("/v1/sessions", json!({ "id": "s", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    eventually(|| async {
        let (_, body) = server.get("/v1/audit?status=429").await;
        (body["data"][0]["route"] == "/v1/sessions" && body["data"][0]["method"] == "POST").then_some(())
    })
    .await;
    // The admin key is not limited.
    for _ in 0..10 {
        assert_eq!(server.get("/v1/sessions").await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_keys_of_an_organization_share_its_bucket() {
    let server = TestServer::start_with(|config| {
        config.rate_limits.org_per_second = nz(1u32);
        config.rate_limits.org_burst = nz(4u32);
    })
    .await;
    server.create_org("a", json!({})).await;
    let first = server.create_key("a", &["sessions:read"], None).await;
    let second = server.create_key("a", &["sessions:read"], None).await;
    let mut codes: Vec<u16> =
        statuses(&server.with_key(&first), 3).await.iter().map(|a| a.status().as_u16()).collect();
    codes.extend(statuses(&server.with_key(&second), 2).await.iter().map(|a| a.status().as_u16()));
    assert_eq!(codes, [200, 200, 200, 200, 429]);
    // Another organization has its own.
    let other = server.create_key("default", &["sessions:read"], None).await;
    assert_eq!(server.with_key(&other).get("/v1/sessions").await.0, StatusCode::OK);
}
