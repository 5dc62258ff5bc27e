//! How `web` sessions live on: restarts, crashes, dropped connections, and every way WhatsApp
//! ends a session.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{
    assert_unhandled_is_empty, contact, control, device, gateway, killable_gateway, link, look, network,
    reach, statuses,
};
use crate::common::{eventually, TestData, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_web_sessions_come_back_after_a_restart_without_a_qr_code() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "alice", "15550001111").await;
    link(&server, &network, "bob", "15550002222").await;
    let server = server.restart().await;
    server.wait_for_status("alice", "connected").await;
    server.wait_for_status("bob", "connected").await;
    let qr_events = |body: Value| body["data"].as_array().unwrap().len();
    let (_, before) = server.get("/v1/events?session_id=alice&types=session.qr&limit=100").await;

    let sent = server.send_text("alice", "15550002222", "after the restart").await;
    server.wait_for_message_status(sent["id"].as_str().unwrap(), "delivered").await;
    eventually(|| async {
        server.messages("bob", "in").await.into_iter().find(|m| m["text"]["body"] == "after the restart")
    })
    .await;
    let (_, after) = server.get("/v1/events?session_id=alice&types=session.qr&limit=100").await;
    assert_eq!(qr_events(before), qr_events(after), "no new QR code after the restart");
    // The second login of each device used the IK handshake (the server key is known).
    let accounts: Value = look(&network, "/accounts").await;
    for account in accounts.as_array().unwrap() {
        let device = &account["devices"][0];
        assert!(device["logins"].as_u64().unwrap() >= 2, "{account}");
        assert_eq!(device["last_pattern"], "ik", "{account}");
    }
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_as_whatsapp_ends_them() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "unlinked", "15550001111").await;
    link(&server, &network, "logout", "15550002222").await;
    link(&server, &network, "banned", "15550003333").await;
    link(&server, &network, "outdated", "15550004444").await;

    // Unlinked from the phone while online: logged out, its keys gone.
    let (status, body) = control(&network, "/accounts/15550001111/unlink", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_for_status("unlinked", "logged_out").await;
    // Logged out through the API: the phone no longer lists the device.
    let (status, body) = server.post("/v1/sessions/logout/logout", json!({})).await;
    assert!(status.is_success(), "{body}");
    server.wait_for_status("logout", "logged_out").await;
    let account = eventually(|| async {
        let accounts: Value = look(&network, "/accounts").await;
        accounts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["phone"] == "15550002222" && a["devices"] == json!([]))
            .cloned()
    })
    .await;
    assert_eq!(account["devices"], json!([]));
    // A temporary ban, and a client too old: told, not retried in a loop.
    let (status, body) = control(&network, "/accounts/15550003333/ban", json!({ "seconds": 3600 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let banned = server.wait_for_status("banned", "disconnected").await;
    assert!(banned["status_reason"].as_str().is_some_and(|r| r.starts_with("temporary_ban")), "{banned}");
    let (status, body) = control(&network, "/accounts/15550004444/outdated", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outdated = server.wait_for_status("outdated", "failed").await;
    assert!(
        outdated["status_reason"].as_str().is_some_and(|r| r.starts_with("client_outdated")),
        "{outdated}"
    );
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_arrive_while_the_gateway_is_down_are_stored_once_when_it_is_back() {
    let network = network().await;
    contact(&network, "15557770001", "Carol").await;
    let server = killable_gateway(&network).await;
    link(&server, &network, "shop", "15550001111").await;
    let (data, config) = tokio::task::block_in_place(|| server.kill());

    // The gateway died without a goodbye: WhatsApp keeps what it could not hand over.
    let bodies = ["one", "two", "three"];
    for body in bodies {
        let (status, sent) = control(
            &network,
            "/contacts/15557770001/messages",
            json!({ "to": "15550001111", "type": "text", "text": { "body": body } }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{sent}");
    }
    eventually(|| async {
        (device(&network, "15550001111").await["queued"].as_u64() >= Some(3)).then_some(())
    })
    .await;

    let server = TestServer::start_in(data, config).await;
    server.wait_for_status("shop", "connected").await;
    let received = eventually(|| async {
        let received = server.messages("shop", "in").await;
        (received.len() >= bodies.len()).then_some(received)
    })
    .await;
    let mut got: Vec<&str> = received.iter().map(|m| m["text"]["body"].as_str().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, ["one", "three", "two"], "each once");
    // Acknowledged only once stored: nothing is left waiting on the network.
    eventually(|| async { (device(&network, "15550001111").await["queued"] == 0).then_some(()) }).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.messages("shop", "in").await.len(), bodies.len(), "nothing stored twice");
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_reconnects_by_itself() {
    let network = network().await;
    let server = gateway(&network).await;
    link(&server, &network, "shop", "15550001111").await;
    let (status, body) = control(&network, "/accounts/15550001111/drop", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(|| async {
        let seen = statuses(&server, "shop").await;
        let dropped = seen.iter().rposition(|s| s == "disconnected")?;
        seen[dropped..].contains(&"connected".to_owned()).then_some(())
    })
    .await;
    let (_, session) = server.get("/v1/sessions/shop").await;
    assert_eq!(session["status"], "connected", "{session}");
    let logins = device(&network, "15550001111").await["logins"].as_u64().unwrap();
    assert!(logins >= 2, "it logged in again: {logins}");
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_unlinked_while_the_gateway_was_down_is_logged_out_when_it_is_back() {
    let network = network().await;
    let server = killable_gateway(&network).await;
    link(&server, &network, "shop", "15550001111").await;
    let (data, config) = tokio::task::block_in_place(|| server.kill());
    let (status, body) = control(&network, "/accounts/15550001111/unlink", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let server = TestServer::start_in(data, config).await;
    let session = server.wait_for_status("shop", "logged_out").await;
    assert_eq!(session["phone"], Value::Null, "the link is forgotten: {session}");
    // Its keys are gone: connecting again starts a new link with a QR code.
    let (status, body) = server.post("/v1/sessions/shop/connect", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    server.wait_for_qr("shop").await;
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_session_running_elsewhere_replaces_this_one_without_a_reconnect_loop() {
    let network = network().await;
    // A backup restored on a second machine while the first still runs: the same device keys
    // connect twice. (Backups are of SQLite databases, whichever database the suite runs on.)
    let original = TestServer::start_with(|config| {
        reach(config, &network);
        config.database_url = None;
    })
    .await;
    link(&original, &network, "shop", "15550001111").await;
    let backup = original.dir.path().join("backup.db");
    wagate_server::backup(&original.config, &backup).await.expect("backup");
    let data = TestData::new().await;
    std::fs::copy(&backup, data.path().join("wagate.db")).expect("restore the backup");
    let mut config = original.config.clone();
    config.data_dir = data.path().to_owned();
    let twin = TestServer::start_in(data, config).await;

    twin.wait_for_status("shop", "connected").await;
    let replaced = original.wait_for_status("shop", "disconnected").await;
    assert!(
        replaced["status_reason"].as_str().is_some_and(|r| r.starts_with("stream_replaced")),
        "{replaced}"
    );
    // No ping-pong: the replaced one does not connect again and take the stream back.
    let logins = device(&network, "15550001111").await["logins"].as_u64();
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    assert_eq!(device(&network, "15550001111").await["logins"].as_u64(), logins, "no login since");
    assert_eq!(statuses(&original, "shop").await.last().map(String::as_str), Some("disconnected"));
    let (_, session) = twin.get("/v1/sessions/shop").await;
    assert_eq!(session["status"], "connected", "{session}");
    // The copy still works.
    contact(&network, "15557770001", "Carol").await;
    let sent = twin.send_text("shop", "15557770001", "from the copy").await;
    twin.wait_for_message_status(sent["id"].as_str().unwrap(), "delivered").await;
    assert_unhandled_is_empty(&network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arriving_as_the_gateway_dies_are_stored_once_when_it_is_back() {
    let network = network().await;
    contact(&network, "15557770001", "Carol").await;
    let server = killable_gateway(&network).await;
    link(&server, &network, "shop", "15550001111").await;

    // Carol writes twenty messages; the gateway dies while they arrive, some stored, some
    // received but not yet committed, some not yet delivered.
    let url = format!("{}/contacts/15557770001/messages", network.control_url);
    let carol = tokio::spawn(async move {
        let client = reqwest::Client::new();
        for i in 0..20 {
            let body =
                json!({ "to": "15550001111", "type": "text", "text": { "body": format!("burst {i}") } });
            let response = client.post(&url).json(&body).send().await.expect("the control API answers");
            assert_eq!(response.status(), StatusCode::OK);
        }
    });
    eventually(|| async { (server.messages("shop", "in").await.len() >= 3).then_some(()) }).await;
    let (data, config) = tokio::task::block_in_place(|| server.kill());
    carol.await.expect("Carol sent everything");

    let server = TestServer::start_in(data, config).await;
    let received = eventually(|| async {
        let received = server.messages("shop", "in").await;
        (received.len() >= 20).then_some(received)
    })
    .await;
    let mut got: Vec<String> =
        received.iter().map(|m| m["text"]["body"].as_str().unwrap().to_owned()).collect();
    got.sort_unstable();
    let mut sent: Vec<String> = (0..20).map(|i| format!("burst {i}")).collect();
    sent.sort_unstable();
    assert_eq!(got, sent, "each once");
    eventually(|| async { (device(&network, "15550001111").await["queued"] == 0).then_some(()) }).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.messages("shop", "in").await.len(), 20, "nothing stored twice");
    assert_unhandled_is_empty(&network).await;
}

/// A rotation of the master key, while the gateway runs and uses the keys, seals every device
/// key again under the new key; the running gateway reads the new key from its key file, and
/// after a restart the sessions come back as they were: same identity, no new QR code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_web_sessions_keep_working_through_a_master_key_rotation_and_a_restart() {
    let network = network().await;
    // The key file in the data dir, generated on first start (as with no configuration).
    let server = TestServer::start_with(|config| {
        reach(config, &network);
        config.master_key = None;
    })
    .await;
    link(&server, &network, "alice", "15550001111").await;
    link(&server, &network, "bob", "15550002222").await;
    let before = server.server().store().sealing_key_ids().await.unwrap();

    let rotation = wagate_server::rotate_master_key(&server.config).await.unwrap();
    assert!(rotation.resealed > 0, "{rotation:?}");
    assert_eq!(rotation.previous, before, "the key it replaced is kept");
    assert_ne!(rotation.current, before[0]);
    let file = std::fs::read_to_string(server.config.data_dir.join("master.key")).unwrap();
    assert_eq!(file.lines().count(), 2, "the new key and the one it replaced");

    // The running gateway works on: its keys are read (and written) under the new key.
    let sent = server.send_text("alice", "15550002222", "after the rotation").await;
    server.wait_for_message_status(sent["id"].as_str().unwrap(), "delivered").await;

    let server = server.restart().await;
    server.wait_for_status("alice", "connected").await;
    server.wait_for_status("bob", "connected").await;
    let sent = server.send_text("bob", "15550001111", "after the restart").await;
    server.wait_for_message_status(sent["id"].as_str().unwrap(), "delivered").await;
    eventually(|| async {
        server.messages("alice", "in").await.into_iter().find(|m| m["text"]["body"] == "after the restart")
    })
    .await;
    let (_, qrs) = server.get("/v1/events?types=session.qr&limit=100").await;
    assert_eq!(qrs["data"].as_array().unwrap().len(), 2, "one QR code per session, at linking: {qrs}");
    assert_unhandled_is_empty(&network).await;
}
