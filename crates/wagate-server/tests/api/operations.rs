//! Operating wagate: readiness, request ids, backups.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn readyz_names_the_failing_check_when_the_database_is_gone() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"], json!({ "database": "ok", "migrations": "ok", "workers": "ok" }));

    for file in ["wagate.db", "wagate.db-wal", "wagate.db-shm"] {
        let _ = std::fs::remove_file(server.dir.path().join(file));
    }
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
    let server = TestServer::start().await;
    server.create_session("alice").await;
    let copy = server.dir.path().join("backup.db");
    wagate_server::backup(&server.config, &copy).await.expect("backup");
    let error = wagate_server::backup(&server.config, &copy).await.expect_err("the file exists now");
    assert!(error.to_string().contains("already exists"));

    // A server started on the copy has the session.
    let restored = tempfile::TempDir::new().unwrap();
    std::fs::copy(&copy, restored.path().join("wagate.db")).unwrap();
    let mut config = server.config.clone();
    config.data_dir = restored.path().to_owned();
    let from_backup = TestServer::start_in(std::sync::Arc::new(restored), config).await;
    let (status, body) = from_backup.get("/v1/sessions/alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
