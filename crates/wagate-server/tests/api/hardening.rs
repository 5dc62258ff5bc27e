//! Slow and idle clients cannot pin the server: headers and bodies have deadlines, connections
//! a ceiling; and the answers carry the security headers.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{nz, TestServer, KEY};

/// Everything the server sends until it closes the connection (a test that hangs here has
/// found a server that never lets go).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let server = TestServer::start_with(|config| config.api.header_read_timeout_ms = nz(200u64)).await;
    let mut stream = TcpStream::connect(server.server().addr()).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: wagate\r\n").await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    // Another client, in time, is answered.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_body_gets_408() {
    let server = TestServer::start_with(|config| config.api.body_read_timeout_ms = nz(300u64)).await;
    let mut stream = TcpStream::connect(server.server().addr()).await.unwrap();
    let head = format!(
        "POST /v1/webhooks HTTP/1.1\r\nHost: wagate\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"url\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    let (_, webhooks) = server.get("/v1/webhooks").await;
    assert_eq!(webhooks["data"].as_array().unwrap().len(), 0, "nothing was created: {webhooks}");
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let server = TestServer::start_with(|config| config.api.max_connections = nz(1usize)).await;
    let idle = TcpStream::connect(server.server().addr()).await.unwrap();
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let url = format!("{}/healthz", server.base);
    let refused = impatient.get(&url).send().await;
    assert!(refused.is_err(), "served beyond the limit: {refused:?}");

    drop(idle);
    let response = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_docs_ui_and_the_api_answer_with_security_headers() {
    let server = TestServer::start().await;
    let docs = reqwest::get(format!("{}/docs/", server.base)).await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let policy = docs.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{policy}");
    }
    for response in [docs, server.request(reqwest::Method::GET, "/v1/sessions").send().await.unwrap()] {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
}
