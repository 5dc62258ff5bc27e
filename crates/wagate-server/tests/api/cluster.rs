//! Several nodes on one PostgreSQL database: sessions spread over them, move off a killed
//! node without losing or repeating a message, and are handed over by a draining one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use wagate_core::SessionId;
use wagate_store::{testing, Cluster, PgStore};

use crate::common::{cluster_data, eventually, fast_config, node_config, TestServer};

/// Nodes `node-a` and `node-b` on one new PostgreSQL database.
async fn two_nodes() -> (TestServer, TestServer) {
    let data_a = cluster_data().await;
    let a = TestServer::start_in(Arc::clone(&data_a), node_config(&data_a, "node-a")).await;
    let data_b = data_a.another_node();
    let b = TestServer::start_in(Arc::clone(&data_b), node_config(&data_b, "node-b")).await;
    (a, b)
}

/// How many sessions each node holds, by node id (dead nodes included).
async fn spread(server: &TestServer) -> HashMap<String, (String, u64)> {
    let (status, body) = server.get("/v1/cluster/nodes").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let id = n["id"].as_str().unwrap().to_owned();
            (id, (n["state"].as_str().unwrap().to_owned(), n["sessions"].as_u64().unwrap()))
        })
        .collect()
}

/// The node each session's latest status event came from.
async fn owners(server: &TestServer, sessions: &[String]) -> HashMap<String, String> {
    let mut owners = HashMap::new();
    for event in server.all_events().await {
        if event["type"] == "session.status" {
            let session = event["session_id"].as_str().unwrap().to_owned();
            // (A session's creation names no node: nobody runs it yet.)
            if let (true, Some(node)) = (sessions.contains(&session), event["data"]["node_id"].as_str()) {
                owners.insert(session, node.to_owned());
            }
        }
    }
    owners
}

/// Each session's status events name the nodes in the order its lease passed between them,
/// never going back to a node whose lease was taken over (two owners at once would).
async fn assert_one_owner_at_a_time(server: &TestServer, store: &PgStore, sessions: &[String]) {
    let events = server.all_events().await;
    for session in sessions {
        let mut writers: Vec<String> = Vec::new();
        for event in events.iter().filter(|e| e["type"] == "session.status" && e["session_id"] == *session) {
            let Some(node) = event["data"]["node_id"].as_str().map(str::to_owned) else { continue };
            if writers.last() != Some(&node) {
                writers.push(node);
            }
        }
        let grants = store.lease_history(&SessionId::parse(session).unwrap()).await.unwrap();
        let tokens: Vec<i64> = grants.iter().map(|g| g.token).collect();
        assert_eq!(tokens, (1..=grants.len() as i64).collect::<Vec<_>>(), "{session}: one grant per token");
        let mut holders: Vec<String> = Vec::new();
        for grant in &grants {
            if holders.last() != Some(&grant.node_id) {
                holders.push(grant.node_id.clone());
            }
        }
        assert_eq!(writers, holders, "{session}: status written only by the lease holder of the time");
    }
}

// Multi-threaded: starting the killable node blocks this thread while node a runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn sessions_spread_over_nodes_and_move_off_a_killed_one_without_losing_a_message() {
    let data_a = cluster_data().await;
    let a = TestServer::start_in(Arc::clone(&data_a), node_config(&data_a, "node-a")).await;
    let sessions: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    for (i, id) in sessions.iter().enumerate() {
        a.link(id, &format!("155500011{i:02}")).await;
    }

    // Two more nodes join: the sessions spread, two each, and reconnect on their new node
    // without a new QR code.
    let data_b = data_a.another_node();
    let config_b = node_config(&data_b, "node-b");
    let b = tokio::task::block_in_place(|| TestServer::start_killable(Arc::clone(&data_b), config_b));
    let data_c = data_a.another_node();
    let c = TestServer::start_in(Arc::clone(&data_c), node_config(&data_c, "node-c")).await;
    eventually(|| async {
        let spread = spread(&c).await;
        let counts: Vec<u64> =
            ["node-a", "node-b", "node-c"].iter().map(|n| spread.get(*n).map_or(0, |s| s.1)).collect();
        (counts == [2, 2, 2]).then_some(())
    })
    .await;
    for id in &sessions {
        c.wait_for_status(id, "connected").await;
    }
    let on_b: Vec<String> = eventually(|| async {
        let owners = owners(&c, &sessions).await;
        let on_b: Vec<String> = sessions
            .iter()
            .filter(|s| owners.get(*s).map(String::as_str) == Some("node-b"))
            .cloned()
            .collect();
        (on_b.len() == 2).then_some(on_b)
    })
    .await;

    // Messages for node b's sessions, accepted by node a; b sends them slowly and dies
    // with some sent, some being sent and some waiting.
    for id in &on_b {
        let (status, body) = b.post("/v1/sim/faults", json!({ "session_id": id, "send_delay_ms": 50 })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut accepted = Vec::new();
    for id in &on_b {
        accepted.extend(a.send_texts(id, "15557770001", &format!("{id}-"), 10).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    let killed = Instant::now();
    tokio::task::block_in_place(|| b.kill());

    // Within the lease TTL and a heartbeat, b's sessions run on a and c, and say so.
    for id in &on_b {
        let session = eventually(|| async {
            let (_, session) = a.get(&format!("/v1/sessions/{id}")).await;
            let owners = owners(&a, &sessions).await;
            let moved = owners.get(id).is_some_and(|n| n != "node-b");
            (moved && session["status"] == "connected").then_some(session)
        })
        .await;
        assert_eq!(session["status"], "connected");
    }
    eprintln!(
        "failover: {} ms from the kill to every session connected elsewhere",
        killed.elapsed().as_millis()
    );
    let spread = spread(&a).await;
    assert_eq!(spread["node-b"].0, "dead");
    assert_eq!(spread["node-a"].1 + spread["node-c"].1, 6);

    // Every message was sent, once.
    for id in &accepted {
        let message = eventually(|| async {
            let (_, message) = a.get(&format!("/v1/messages/{id}")).await;
            ["sent", "delivered", "read"].contains(&message["status"].as_str()?).then_some(message)
        })
        .await;
        let sent =
            message["status_history"].as_array().unwrap().iter().filter(|h| h["status"] == "sent").count();
        assert_eq!(sent, 1, "{message}");
    }

    let store = PgStore::open(fast_config(&data_a).database_url.unwrap().expose_secret(), testing::keyring())
        .await
        .unwrap();
    assert_one_owner_at_a_time(&a, &store, &sessions).await;
    store.close().await;
    drop(c);
    drop(a);
}

#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn a_drained_node_hands_its_sessions_over_at_once_and_any_node_answers() {
    let data_a = cluster_data().await;
    let mut config_a = node_config(&data_a, "node-a");
    // Long leases: sessions that move before they run out were handed over, not abandoned.
    config_a.node.lease_ttl_ms = 30_000;
    let a = TestServer::start_in(Arc::clone(&data_a), config_a).await;
    a.link("alice", "15550001111").await;
    a.link("bob", "15550002222").await;
    let data_b = data_a.another_node();
    let mut config_b = node_config(&data_b, "node-b");
    config_b.node.lease_ttl_ms = 30_000;
    let b = TestServer::start_in(Arc::clone(&data_b), config_b).await;

    // A session connected through b runs wherever it lands; b answers for it either way.
    let (status, body) = b.get("/v1/sessions/alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let started = Instant::now();
    let (status, body) = b.post("/v1/cluster/nodes/node-a/drain", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually(|| async {
        let spread = spread(&b).await;
        (spread["node-a"] == ("draining".to_owned(), 0) && spread["node-b"].1 == 2).then_some(())
    })
    .await;
    for id in ["alice", "bob"] {
        b.wait_for_status(id, "connected").await;
    }
    assert!(started.elapsed().as_millis() < 30_000, "moved before the leases ran out");
    let owners = owners(&b, &["alice".into(), "bob".into()]).await;
    assert!(owners.values().all(|n| n == "node-b"), "{owners:?}");

    // A send through the drained node goes out through b at once (b is woken, not polled).
    let message = a.send_text("alice", "15557770001", "after the drain").await;
    let sent = a.wait_until_sent(message["id"].as_str().unwrap()).await;
    assert_eq!(sent["status_history"][0]["status"], "queued");

    // Disconnecting through a stops the session on b.
    let (status, body) = a.post("/v1/sessions/bob/disconnect", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "disconnected", "{body}");
    let (status, body) = a.post("/v1/sessions/bob/connect", json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a draining node takes no sessions: {body}");
    let (status, body) = b.post("/v1/sessions/bob/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    b.wait_for_status("bob", "connected").await;
    let _: Value = body;
}

/// A session connected while its node's heartbeat is reading the node's leases (after the
/// statement's snapshot, so its lease is not among them) keeps its task: the heartbeat stops
/// only tasks that ran before it. Stopped, the session stayed `connecting` (or `connected`)
/// and sent nothing, its lease renewed by the node for as long as the node lived.
#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn a_session_connected_during_a_heartbeat_keeps_running() {
    use sqlx::{Connection, Executor, PgConnection};
    let data = cluster_data().await;
    let url = fast_config(&data).database_url.unwrap().expose_secret().to_owned();
    let node = TestServer::start_in(Arc::clone(&data), node_config(&data, "node-a")).await;
    node.link("alice", "15550001111").await;
    node.link("bob", "15550002222").await;
    let (status, body) = node.post("/v1/sessions/bob/disconnect", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The next heartbeat's read of the node's leases waits behind alice's.
    let mut holder = PgConnection::connect(&url).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder.execute("SELECT 1 FROM session_leases WHERE session_id = 'alice' FOR UPDATE").await.unwrap();
    testing::wait_for_a_lock_wait(&PgStore::open(&url, testing::keyring()).await.unwrap()).await;
    let (status, body) = node.post("/v1/sessions/bob/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    holder.execute("ROLLBACK").await.unwrap();

    node.wait_for_status("bob", "connected").await;
    let message = node.send_text("bob", "15557770001", "still listening").await;
    node.wait_until_sent(message["id"].as_str().unwrap()).await;
}

#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn sim_sessions_on_different_nodes_message_each_other() {
    let (a, b) = two_nodes().await;
    // Each links through its own node, which runs it.
    a.link("alice", "15550001111").await;
    b.link("bob", "15550002222").await;
    let owners = owners(&a, &["alice".into(), "bob".into()]).await;
    assert_eq!((owners["alice"].as_str(), owners["bob"].as_str()), ("node-a", "node-b"));

    let sent = a.send_text("alice", "15550002222", "hello from node a").await;
    let read = a.wait_for_message_status(sent["id"].as_str().unwrap(), "read").await;
    assert_eq!(crate::common::history(&read), ["queued", "sending", "sent", "delivered", "read"]);
    let received = eventually(|| async {
        let messages = b.messages("bob", "in").await;
        messages.first().cloned()
    })
    .await;
    assert_eq!(received["text"]["body"], "hello from node a");
    assert_eq!(received["from"], "15550001111@s.whatsapp.net");

    // The QR code of a session linking on node a is shown by node b too.
    a.create_session("carol").await;
    let (status, body) = a.post("/v1/sessions/carol/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let code = a.wait_for_qr("carol").await;
    // (Once node a has recorded it: a shows its own code a moment before.)
    let shown = eventually(|| async {
        let (status, shown) = b.get("/v1/sessions/carol/qr").await;
        (status == StatusCode::OK).then_some(shown)
    })
    .await;
    assert_eq!(shown["code"], code.as_str());
    assert!(shown["image"].as_str().unwrap().starts_with("data:image/png;base64,"));

    let reply = b.send_text("bob", "15550001111", "hello back").await;
    b.wait_for_message_status(reply["id"].as_str().unwrap(), "read").await;
    let received = eventually(|| async { a.messages("alice", "in").await.first().cloned() }).await;
    assert_eq!(received["text"]["body"], "hello back");
}

#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn a_session_deleted_and_made_again_for_another_organization_is_never_sent_to_by_the_first() {
    let (a, b) = two_nodes().await;
    a.create_org("first", json!({})).await;
    a.create_org("second", json!({})).await;
    let first = a.create_key("first", &["messages:send"], None).await;
    let second = a.create_key("second", &["messages:send", "messages:read"], None).await;
    let (status, body) =
        a.post("/v1/sessions", json!({ "id": "shared", "connector": "sim", "org_id": "first" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let text = json!({ "to": "15550001111", "type": "text", "text": { "body": "hi" } });
    // Node b learns (and remembers) whose session it is by sending through it.
    let (status, body) = b.with_key(&first).post("/v1/sessions/shared/messages", text.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // Deleted and made again, for the second organization, through node a.
    let (status, body) = a.call(a.request(reqwest::Method::DELETE, "/v1/sessions/shared")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) =
        a.post("/v1/sessions", json!({ "id": "shared", "connector": "sim", "org_id": "second" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // At once, whatever node b still remembers: the first organization's key finds no such
    // session, and the second's sends through it.
    let (status, body) = b.with_key(&first).post("/v1/sessions/shared/messages", text.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = b.with_key(&second).post("/v1/sessions/shared/messages", text.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // The operator's key sends through it on node b too (once b has heard of the deletion).
    let sent = eventually(|| async {
        let (status, body) = b.post("/v1/sessions/shared/messages", text.clone()).await;
        (status == StatusCode::ACCEPTED).then_some(body)
    })
    .await;
    let (status, message) = a.get(&format!("/v1/messages/{}", sent["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{message}");
    let mine = a.with_key(&second).get("/v1/sessions/shared/messages?direction=out").await;
    assert_eq!(mine.0, StatusCode::OK, "{}", mine.1);
    assert_eq!(mine.1["data"].as_array().map(Vec::len), Some(2), "{}", mine.1);
}
