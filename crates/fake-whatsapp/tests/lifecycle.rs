//! S3 lifecycle: logout by the client, unlink by the phone (online and
//! offline), stream replaced, temporary ban, client outdated and a dropped
//! connection each produce the event whatsapp-rust documents for them.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

use std::sync::Arc;

use common::{device, fake, link, post, unhandled, WAIT};
use fake_whatsapp::companion::{Companion, Options};
use serde_json::json;
use whatsapp_rust::store::traits::DeviceStore;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::wacore::store::InMemoryBackend;

fn logged_out(e: &Event) -> Option<bool> {
    match e {
        Event::LoggedOut(l) => Some(l.on_connect),
        _ => None,
    }
}

async fn restart(fake: &fake_whatsapp::Running, old: &Companion) -> Companion {
    Companion::start(&fake.ws_url, Options { backend: Some(old.backend.clone()), ..Options::named("Again") })
        .await
        .expect("restarted client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_logout_removes_the_device() {
    let fake = fake().await;
    let alice = link(&fake, "15553001", "Alice").await;
    alice.client.logout().await;
    assert!(!alice.wait_for(WAIT, logged_out).await.expect("LoggedOut"), "not at login");
    assert_eq!(device(&fake, "15553001", 1).await, serde_json::Value::Null, "the device is gone");
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_while_online_logs_the_client_out() {
    let fake = fake().await;
    let alice = link(&fake, "15553002", "Alice").await;
    let (status, body) = post(format!("{}/accounts/15553002/unlink", fake.control_url), json!({})).await;
    assert_eq!((status, body), (200, json!({"unlinked": 1})));
    assert!(!alice.wait_for(WAIT, logged_out).await.expect("LoggedOut"), "told on the open stream");
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_while_offline_refuses_the_next_login() {
    let fake = fake().await;
    let alice = link(&fake, "15553003", "Alice").await;
    alice.stop().await;
    let (status, _) = post(format!("{}/accounts/15553003/unlink", fake.control_url), json!({})).await;
    assert_eq!(status, 200);
    let again = restart(&fake, &alice).await;
    assert!(again.wait_for(WAIT, logged_out).await.expect("LoggedOut"), "refused at login");
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_of_the_same_device_replaces_the_first_stream() {
    let fake = fake().await;
    let alice = link(&fake, "15553004", "Alice").await;
    // A second client holding the same device credentials.
    let copy = Arc::new(InMemoryBackend::new());
    let stored = alice.backend.load().await.expect("load").expect("device");
    copy.save(&stored).await.expect("save");
    let twin = Companion::start(&fake.ws_url, Options { backend: Some(copy), ..Options::named("Twin") })
        .await
        .expect("twin");
    twin.wait_for(WAIT, |e| matches!(e, Event::Connected(_)).then_some(())).await.expect("twin connected");
    alice
        .wait_for(WAIT, |e| matches!(e, Event::StreamReplaced(_)).then_some(()))
        .await
        .expect("StreamReplaced on the first client");
    assert_eq!(device(&fake, "15553004", 1).await["online"], true, "the new stream stays");
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    twin.stop().await;
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_reaches_the_client_as_a_temporary_ban_and_refuses_logins() {
    let fake = fake().await;
    let alice = link(&fake, "15553005", "Alice").await;
    let (status, _) =
        post(format!("{}/accounts/15553005/ban", fake.control_url), json!({"seconds": 3600})).await;
    assert_eq!(status, 200);
    let expire = alice
        .wait_for(WAIT, |e| match e {
            Event::TemporaryBan(b) => Some(b.expire.num_seconds()),
            _ => None,
        })
        .await
        .expect("TemporaryBan");
    assert_eq!(expire, 3600);
    alice.stop().await;
    let again = restart(&fake, &alice).await;
    again
        .wait_for(WAIT, |e| matches!(e, Event::TemporaryBan(_)).then_some(()))
        .await
        .expect("TemporaryBan at login");
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outdated_client_is_told_so() {
    let fake = fake().await;
    let alice = link(&fake, "15553006", "Alice").await;
    let (status, _) = post(format!("{}/accounts/15553006/outdated", fake.control_url), json!({})).await;
    assert_eq!(status, 200);
    alice
        .wait_for(WAIT, |e| matches!(e, Event::ClientOutdated(_)).then_some(()))
        .await
        .expect("ClientOutdated");
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_seen_and_the_client_reconnects() {
    let fake = fake().await;
    let alice = link(&fake, "15553007", "Alice").await;
    let (status, body) = post(format!("{}/accounts/15553007/drop", fake.control_url), json!({})).await;
    assert_eq!((status, body), (200, json!({"dropped": 1})));
    alice.wait_for(WAIT, |e| matches!(e, Event::Disconnected(_)).then_some(())).await.expect("Disconnected");
    alice
        .wait_for_nth(WAIT, 2, |e| matches!(e, Event::Connected(_)).then_some(()))
        .await
        .expect("reconnected by itself");
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_actions_on_an_unknown_account_are_404() {
    let fake = fake().await;
    for action in ["unlink", "outdated", "drop"] {
        let (status, _) = post(format!("{}/accounts/999/{action}", fake.control_url), json!({})).await;
        assert_eq!(status, 404, "{action}");
    }
}
