//! S3 durability: a stanza waits in the recipient device's queue until that
//! device acks it, and whatever is still there is redelivered (offline="1")
//! at the next connect.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{device, fake, link, receipt, received, text, unhandled, WAIT};
use fake_whatsapp::companion::{Companion, Options};
use whatsapp_rust::types::events::{Event, InboundMessage};
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::{Client, InboundDurabilityHook, Jid, NodeFilter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_an_offline_device_arrives_when_it_connects() {
    let fake = fake().await;
    let (alice, bob) = tokio::join!(link(&fake, "15552001", "Alice"), link(&fake, "15552002", "Bob"));
    bob.stop().await;

    let sent =
        alice.client.send_message(Jid::pn("15552002"), text("while you were away")).await.expect("sent");
    let id = sent.message_id;
    alice
        .wait_for(WAIT, |e| matches!(e, Event::ServerAck(a) if a.id == id).then_some(()))
        .await
        .expect("ServerAck while the recipient is offline");
    assert_eq!(device(&fake, "15552002", 1).await["queued"], 1, "held for the offline device");

    let bob = Companion::start(
        &fake.ws_url,
        Options { backend: Some(bob.backend.clone()), ..Options::named("Bob") },
    )
    .await
    .expect("bob again");
    let (_, body, offline) = bob.wait_for(WAIT, |e| received(e, &id)).await.expect("delivered at connect");
    assert_eq!(body, "while you were away");
    assert!(offline, "marked as coming from the offline queue");
    alice.wait_for(WAIT, |e| receipt(e, &id, ReceiptType::Delivered)).await.expect("Delivered");
    assert_eq!(device(&fake, "15552002", 1).await["queued"], 0, "acked, so gone");

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
    bob.stop().await;
}

/// Fails every commit while `failing` is set; records every id it saw.
struct FlakyStore {
    failing: AtomicBool,
    seen: Mutex<Vec<String>>,
}

#[whatsapp_rust::async_trait]
impl InboundDurabilityHook for FlakyStore {
    async fn on_messages(
        &self,
        _client: Arc<Client>,
        batch: &[InboundMessage],
    ) -> whatsapp_rust::anyhow::Result<()> {
        self.seen.lock().expect("lock").extend(batch.iter().map(|m| m.info.id.clone()));
        if self.failing.load(Ordering::SeqCst) {
            whatsapp_rust::anyhow::bail!("the store is down");
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_durability_hook_failed_is_redelivered_until_acked() {
    let fake = fake().await;
    let store = Arc::new(FlakyStore { failing: AtomicBool::new(true), seen: Mutex::new(Vec::new()) });
    let (alice, bob) = tokio::join!(
        link(&fake, "15552101", "Alice"),
        Companion::link(
            &fake.server,
            &fake.ws_url,
            "15552102",
            Options { durability_hook: Some(store.clone()), ..Options::named("Bob") },
        ),
    );
    let bob = bob.expect("bob linked");

    let sent = alice.client.send_message(Jid::pn("15552102"), text("keep me")).await.expect("sent");
    let id = sent.message_id;
    let seen = || store.seen.lock().expect("lock").iter().filter(|s| **s == id).count();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(seen() >= 1, "the hook saw the message and failed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The phone's app-state key share went through the failing hook too.
    let queued = device(&fake, "15552102", 1).await["queued"].as_u64().unwrap_or(0);
    assert!(queued >= 1, "no ack, so still queued");
    assert_eq!(bob.count(|e| received(e, &id).is_some()), 0, "not handed to the app");

    // The store comes back; the next connection gets the message again from
    // the fake's queue (offline="1"), and this time it is committed.
    let redelivered = bob.client.wait_for_node(NodeFilter::tag("message").attr("offline", "1"));
    bob.client.reconnect().await;
    store.failing.store(false, Ordering::SeqCst);
    tokio::time::timeout(WAIT, redelivered).await.expect("in time").expect("the fake redelivered it");
    let (_, body, offline) = bob.wait_for(WAIT, |e| received(e, &id)).await.expect("handed to the app");
    assert_eq!(body, "keep me");
    assert!(offline, "it came from the offline queue");
    let deadline = tokio::time::Instant::now() + WAIT;
    while device(&fake, "15552102", 1).await["queued"] != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(device(&fake, "15552102", 1).await["queued"], 0, "acked, so gone");

    // Once acked it is not delivered again.
    let seen_before = seen();
    bob.client.reconnect().await;
    bob.wait_for_nth(WAIT, 3, |e| matches!(e, Event::Connected(_)).then_some(())).await.expect("reconnected");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seen(), seen_before, "not redelivered after the ack");
    assert_eq!(bob.count(|e| received(e, &id).is_some()), 1, "handed to the app once");

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
    bob.stop().await;
}
