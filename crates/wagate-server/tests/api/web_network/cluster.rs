//! A linked `web` session moving between nodes of a cluster on PostgreSQL, with its keys.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{assert_unhandled_is_empty, contact, control, device, link, look, network, reach, statuses};
use crate::common::{cluster_data, eventually, node_config, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn a_web_session_moves_off_a_killed_node_with_its_keys_and_loses_nothing() {
    let network = network().await;
    contact(&network, "15557770001", "Carol").await;
    let data_a = cluster_data().await;
    let mut config_a = node_config(&data_a, "node-a");
    reach(&mut config_a, &network);
    let a = tokio::task::block_in_place(|| TestServer::start_killable(Arc::clone(&data_a), config_a));
    link(&a, &network, "shop", "15550001111").await;
    let data_b = data_a.another_node();
    let mut config_b = node_config(&data_b, "node-b");
    reach(&mut config_b, &network);
    let b = TestServer::start_in(Arc::clone(&data_b), config_b).await;
    let codes_before = qr_codes(&b).await;

    // Node a dies with the session; meanwhile the shop writes and Carol writes to the shop.
    tokio::task::block_in_place(|| a.kill());
    let queued = b.send_texts("shop", "15557770001", "during the move ", 3).await;
    for body in ["are you there?", "hello?"] {
        let (status, sent) = control(
            &network,
            "/contacts/15557770001/messages",
            json!({ "to": "15550001111", "type": "text", "text": { "body": body } }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{sent}");
    }

    // Node b takes it over with the same keys: no QR code, an IK login.
    eventually(|| async {
        let (_, session) = b.get("/v1/sessions/shop").await;
        let (_, events) = b.get("/v1/events?session_id=shop&types=session.status&limit=100").await;
        let last = events["data"].as_array()?.last()?.clone();
        (session["status"] == "connected" && last["data"]["node_id"] == "node-b").then_some(())
    })
    .await;
    assert_eq!(qr_codes(&b).await, codes_before, "no new QR code");
    assert_eq!(device(&network, "15550001111").await["last_pattern"], "ik");

    // What was queued is sent once; what Carol wrote is stored once.
    for id in &queued {
        b.wait_for_message_status(id, "read").await;
    }
    let inbox: Value = look(&network, "/contacts/15557770001/messages").await;
    let mut got: Vec<&str> = inbox.as_array().unwrap().iter().filter_map(|m| m["body"].as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, ["during the move 0", "during the move 1", "during the move 2"], "each once");
    let received = eventually(|| async {
        let received = b.messages("shop", "in").await;
        (received.len() >= 2).then_some(received)
    })
    .await;
    let mut bodies: Vec<&str> = received.iter().filter_map(|m| m["text"]["body"].as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["are you there?", "hello?"], "each once");

    // No stream-replaced ping-pong: one owner, and it stays connected.
    let logins = device(&network, "15550001111").await["logins"].as_u64();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(device(&network, "15550001111").await["logins"].as_u64(), logins, "no login since");
    let (_, events) = b.get("/v1/events?session_id=shop&types=session.status&limit=100").await;
    let replaced = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["data"]["reason"].as_str().is_some_and(|r| r.starts_with("stream_replaced")));
    assert!(!replaced, "{events}");
    assert_eq!(statuses(&b, "shop").await.last().map(String::as_str), Some("connected"));
    assert_unhandled_is_empty(&network).await;
}

/// How many QR codes the session has shown.
async fn qr_codes(server: &TestServer) -> usize {
    let (_, body) = server.get("/v1/events?session_id=shop&types=session.qr&limit=100").await;
    body["data"].as_array().map_or(0, Vec::len)
}
