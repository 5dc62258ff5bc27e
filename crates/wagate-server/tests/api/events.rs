//! The event log: every state change, in order, pageable.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{event_seq, TestServer};

#[tokio::test]
async fn every_change_is_an_event_in_order_and_pages_agree() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let message = server.send_text("alice", "15550002222", "hi").await;
    let id = message["id"].as_str().unwrap();
    server.wait_for_message_status(id, "read").await;

    let all = server.all_events().await;
    let seqs: Vec<u64> = all.iter().map(event_seq).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>(), "ids are gap-free and increasing");
    for event in &all {
        assert!(
            event["created_at"].is_string() && event["session_id"].is_string() && event["data"].is_object()
        );
    }
    let kinds: std::collections::HashSet<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in ["session.status", "session.qr", "message.status", "message.received"] {
        assert!(kinds.contains(kind), "{kind} missing");
    }
    let statuses: Vec<&str> = all
        .iter()
        .filter(|e| e["type"] == "message.status" && e["data"]["message_id"] == id)
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["queued", "sending", "sent", "delivered", "read"]);

    // Small pages give the same log.
    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = server.get(&format!("/v1/events?limit=2{after}")).await;
        assert_eq!(status, StatusCode::OK);
        let data = page["data"].as_array().unwrap();
        if data.is_empty() {
            assert_eq!(page["next_after"].as_str(), paged.last().map(|e: &Value| e["id"].as_str().unwrap()));
            break;
        }
        paged.extend(data.iter().cloned());
        after = format!("&after={}", page["next_after"].as_str().unwrap());
    }
    assert_eq!(paged, all);

    // Filters.
    let (_, bob) = server.get("/v1/events?session_id=bob&limit=1000").await;
    let bob = bob["data"].as_array().unwrap();
    assert!(!bob.is_empty() && bob.iter().all(|e| e["session_id"] == "bob"));
    let (_, messages) = server.get("/v1/events?types=message.*&limit=1000").await;
    let messages = messages["data"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        all.iter().filter(|e| e["type"].as_str().unwrap().starts_with("message.")).count()
    );
    let (_, two) = server.get("/v1/events?types=session.qr,message.received&limit=1000").await;
    assert!(two["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] == "session.qr" || e["type"] == "message.received"));
}

#[tokio::test]
async fn bad_event_queries_are_422() {
    let server = TestServer::start().await;
    for query in
        ["after=msg_1", "after=evt_x", "types=nope.*", "limit=0", "limit=5000", "session_id=Bad%20Id"]
    {
        let (status, body) = server.get(&format!("/v1/events?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
}
