//! The master key that seals secrets at rest: generated into the data dir when none is
//! configured, and a start with the wrong one (or none) stops with an error that says so.

use std::sync::Arc;

use serde_json::json;
use tokio::net::TcpListener;
use wagate_server::{Config, Server};
use wagate_store::MasterKey;

use crate::common::{fast_config, TestData, TestServer};

async fn start_error(config: Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    match Server::start(config, listener).await {
        Ok(_) => panic!("started with master keys that do not open the database"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn a_generated_master_key_is_private_and_a_start_without_it_says_which_key_it_needs() {
    let data = TestData::new().await;
    let mut config = fast_config(&data);
    config.master_key = None;
    let mut server = TestServer::start_in(Arc::clone(&data), config.clone()).await;
    let file = data.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let key = MasterKey::parse(std::fs::read_to_string(&file).unwrap().lines().next().unwrap()).unwrap();
    server.create_webhook("http://127.0.0.1:9/hook", json!(["*"])).await;
    server.stop().await;

    // Another key configured: the start stops and names the key the database needs.
    let mut wrong = config.clone();
    wrong.master_key = Some(MasterKey::generate().to_base64().into());
    let error = start_error(wrong).await;
    assert!(error.contains(&format!("sealed with master key {}", key.id())), "{error}");

    // The key file lost: a new one is no help.
    std::fs::remove_file(&file).unwrap();
    let error = start_error(config.clone()).await;
    assert!(error.contains(&format!("sealed with master key {}", key.id())), "{error}");

    // A key that is not one.
    let mut malformed = config.clone();
    malformed.master_key = Some("not-a-key".into());
    let error = start_error(malformed).await;
    assert!(error.contains("master_key (WAGATE_MASTER_KEY) is not valid"), "{error}");

    // The key from the backup, configured: all is there.
    config.master_key = Some(key.to_base64().into());
    let server = TestServer::start_in(data, config).await;
    let (_, webhooks) = server.get("/v1/webhooks").await;
    assert_eq!(webhooks["data"].as_array().unwrap().len(), 1, "{webhooks}");
}
