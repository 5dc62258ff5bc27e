//! Operating wagate: readiness, request ids, backups.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{metrics_page, sample, TestServer};

#[tokio::test]
async fn readyz_names_the_failing_check_when_the_database_is_gone() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"], json!({ "database": "ok", "migrations": "ok", "workers": "ok" }));

    server.dir.lose_database().await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(body["error"]["details"]["check"], "database");
    // Still alive, though.
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let server = TestServer::start().await;
    let response =
        server.request(Method::GET, "/v1/sessions").header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    let response = server.request(Method::GET, "/v1/nothing-here").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
}

#[tokio::test]
async fn a_backup_taken_while_running_holds_the_data() {
    // Backups are of SQLite databases, whichever database the suite runs on.
    let server = TestServer::start_with(|config| config.database_url = None).await;
    server.create_session("alice").await;
    let copy = server.dir.path().join("backup.db");
    wagate_server::backup(&server.config, &copy).await.expect("backup");
    let error = wagate_server::backup(&server.config, &copy).await.expect_err("the file exists now");
    assert!(error.to_string().contains("already exists"));

    // A server started on the copy has the session.
    let mut config = server.config.clone();
    let data = crate::common::TestData::new().await;
    std::fs::copy(&copy, data.path().join("wagate.db")).unwrap();
    config.data_dir = data.path().to_owned();
    let from_backup = TestServer::start_in(data, config).await;
    let (status, body) = from_backup.get("/v1/sessions/alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn metrics_move_when_a_message_is_sent() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let before = metrics_page(&server).await;
    let sent = server.send_text("alice", "15550002222", "counted").await;
    server.wait_for_message_status(sent["id"].as_str().unwrap(), "read").await;
    let after = metrics_page(&server).await;

    // The recorder is shared by every server in this process, so compare before and after.
    for line in [
        r#"wagate_messages_total{connector="sim",direction="out",status="sent"}"#,
        r#"wagate_messages_total{connector="sim",direction="out",status="read"}"#,
        r#"wagate_messages_total{connector="sim",direction="in",status="received"}"#,
        r#"wagate_events_total{type="message.status"}"#,
        r#"wagate_http_requests_total{method="POST",route="/v1/sessions/{id}/messages",status="202"}"#,
        r#"wagate_send_latency_seconds_count{stage="accepted_to_sent"}"#,
        r#"wagate_send_latency_seconds_count{stage="sent_to_delivered"}"#,
    ] {
        assert!(sample(&after, line) > sample(&before, line), "{line} did not move");
    }
    for present in [
        r#"wagate_sessions{connector="sim",status="connected"}"#,
        "wagate_outbox_messages",
        "wagate_webhook_deliveries_pending",
        "wagate_http_request_duration_seconds_bucket",
        "wagate_process_resident_memory_bytes",
        "wagate_process_cpu_seconds_total",
    ] {
        assert!(after.contains(present), "{present} missing from /metrics");
    }
}

#[tokio::test]
async fn metrics_can_require_the_key_or_move_to_their_own_address() {
    let server = TestServer::start_with(|c| c.metrics.require_key = true).await;
    let anonymous = reqwest::get(format!("{}/metrics", server.base)).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    metrics_page(&server).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = TestServer::start_with(|c| c.metrics.listen = Some(format!("127.0.0.1:{port}"))).await;
    assert_eq!(server.get("/metrics").await.0, StatusCode::NOT_FOUND);
    let own = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.text().await.unwrap().contains("wagate_"));
}
