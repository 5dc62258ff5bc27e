//! The metrics of a cluster add up: every node follows the whole event log, and each event is
//! counted by the one node that numbered it. The nodes run in this process of their own, which
//! has one metrics recorder: their counts land in one registry, as a Prometheus `sum` over the
//! nodes adds them up, and no other test's messages are mixed in.

// A panic is the failure report; the shared helpers are not all used here.
#![allow(clippy::unwrap_used, unreachable_pub, dead_code)]

#[path = "api/common.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{cluster_data, metrics_page, node_config, sample, TestServer};

const SENT: &str = r#"wagate_messages_total{connector="sim",direction="out",status="sent"}"#;
const READ: &str = r#"wagate_messages_total{connector="sim",direction="out",status="read"}"#;
const STATUS_EVENTS: &str = r#"wagate_events_total{type="message.status"}"#;
const ACCEPTED_TO_SENT: &str = r#"wagate_send_latency_seconds_count{stage="accepted_to_sent"}"#;
const SENT_TO_DELIVERED: &str = r#"wagate_send_latency_seconds_count{stage="sent_to_delivered"}"#;

#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn two_nodes_count_each_message_and_event_once() {
    let data_a = cluster_data().await;
    let a = TestServer::start_in(Arc::clone(&data_a), node_config(&data_a, "node-a")).await;
    let data_b = data_a.another_node();
    let b = TestServer::start_in(Arc::clone(&data_b), node_config(&data_b, "node-b")).await;
    // Each node runs the session linked through it, and numbers events of both.
    a.link("alice", "15550001111").await;
    b.link("bob", "15550002222").await;
    let lines = [SENT, READ, STATUS_EVENTS, ACCEPTED_TO_SENT, SENT_TO_DELIVERED];
    let before = metrics_page(&a).await;

    let mut ids = a.send_texts("alice", "15550009999", "from node a", 10).await;
    ids.extend(b.send_texts("bob", "15550009999", "from node b", 10).await);
    for id in &ids {
        a.wait_for_message_status(id, "read").await;
    }
    common::eventually(|| async {
        (sample(&metrics_page(&a).await, READ) - sample(&before, READ) >= 20.0).then_some(())
    })
    .await;
    // Both feeds are far past the last event by now: a node that counted what the other one
    // numbered would have doubled the counts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let after = metrics_page(&b).await;
    let moved: Vec<(&str, f64)> =
        lines.iter().map(|line| (*line, sample(&after, line) - sample(&before, line))).collect();
    assert_eq!(
        moved,
        [
            (SENT, 20.0),
            (READ, 20.0),
            // queued, sending, sent, delivered, read
            (STATUS_EVENTS, 100.0),
            (ACCEPTED_TO_SENT, 20.0),
            (SENT_TO_DELIVERED, 20.0),
        ]
    );
}
