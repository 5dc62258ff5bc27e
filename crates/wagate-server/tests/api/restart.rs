//! Nothing accepted is lost across a restart, graceful or not.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::common::{event_seq, eventually, fast_config, history, nz, TestData, TestServer};

#[tokio::test]
async fn queued_messages_survive_a_restart_and_are_sent_once() {
    let mut server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    server.post("/v1/sessions/bob/disconnect", json!({})).await;
    let queued = server.send_texts("bob", "15550001111", "queued ", 3).await;
    let before = server.all_events().await;

    server = server.restart().await;

    // alice was connected and comes back by herself; bob was disconnected on purpose and is not.
    assert_eq!(server.wait_for_status("alice", "connected").await["phone"], "15550001111");
    assert_eq!(server.get("/v1/sessions/bob").await.1["status"], "disconnected");
    for id in &queued {
        assert_eq!(server.get(&format!("/v1/messages/{id}")).await.1["status"], "queued");
    }

    server.post("/v1/sessions/bob/connect", json!({})).await;
    for id in &queued {
        let read = server.wait_for_message_status(id, "read").await;
        assert_eq!(history(&read), ["queued", "sending", "sent", "delivered", "read"]);
    }
    let received: Vec<String> = server
        .messages("alice", "in")
        .await
        .iter()
        .map(|m| m["text"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(received, ["queued 0", "queued 1", "queued 2"], "each sent exactly once, in order");

    let after = server.all_events().await;
    assert_eq!(&after[..before.len()], &before[..], "the log before the restart is intact");
    assert_eq!(after.iter().map(event_seq).collect::<Vec<_>>(), (1..=after.len() as u64).collect::<Vec<_>>());
}

/// The first server runs on its own runtime; dropping that runtime stops it the way a crash
/// does: sends in flight, no shutdown, no goodbye to the database.
#[test]
fn messages_accepted_before_a_crash_are_sent_after_it() {
    let dir = tokio::runtime::Runtime::new().unwrap().block_on(TestData::new());
    let mut config = fast_config(&dir);
    config.engine.send_lease_ms = 100;
    config.engine.send_batch = nz(4);
    let crashed = tokio::runtime::Runtime::new().unwrap();
    let accepted: Vec<String> = crashed.block_on(async {
        let server = TestServer::start_in(Arc::clone(&dir), config.clone()).await;
        server.link("alice", "15550001111").await;
        server.link("bob", "15550002222").await;
        server.post("/v1/sim/faults", json!({ "session_id": "bob", "send_delay_ms": 20 })).await;
        let ids = server.send_texts("bob", "15550001111", "m", 20).await;
        // Crash while some are sent, some are being sent and some wait.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        drop(server);
        ids
    });
    crashed.shutdown_background();
    let restarted_at = chrono::Utc::now();

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let server = TestServer::start_in(Arc::clone(&dir), config).await;
        server.wait_for_status("alice", "connected").await;
        server.wait_for_status("bob", "connected").await;
        // Receipts that were pending in the old process's simulated phones died with it, so
        // what counts here is that every message was sent, and sent once.
        let mut sent_after_restart = Vec::new();
        for id in &accepted {
            let message = eventually(|| async {
                let (_, message) = server.get(&format!("/v1/messages/{id}")).await;
                ["sent", "delivered", "read"].contains(&message["status"].as_str()?).then_some(message)
            })
            .await;
            let sent: Vec<&Value> = message["status_history"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| h["status"] == "sent")
                .collect();
            assert_eq!(sent.len(), 1, "{id} was sent once: {message}");
            let at = chrono::DateTime::parse_from_rfc3339(sent[0]["at"].as_str().unwrap()).unwrap();
            if at >= restarted_at {
                sent_after_restart.push(message["text"]["body"].as_str().unwrap().to_owned());
            }
        }
        assert!(!sent_after_restart.is_empty(), "the crash came before every message was sent");
        // The simulated WhatsApp lives in the process, so a message it was handing to alice at
        // the moment of the crash died with it; everything sent after the restart must arrive.
        let received = eventually(|| async {
            let received: Vec<String> = server
                .messages("alice", "in")
                .await
                .iter()
                .map(|m| m["text"]["body"].as_str().unwrap().to_owned())
                .collect();
            sent_after_restart.iter().all(|body| received.contains(body)).then_some(received)
        })
        .await;
        let mut unique = received.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), received.len(), "no message arrived twice: {received:?}");
    });
}
