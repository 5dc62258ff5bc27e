//! S2: two linked accounts exchange text through the fake (which only routes
//! the ciphertexts) and see server acks, delivery and read receipts.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

use std::sync::Arc;

use common::{fake, receipt, received, text, unhandled, WAIT};
use fake_whatsapp::companion::{Companion, Options};
use whatsapp_rust::types::events::Event;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::{Jid, NodeFilter};

async fn send_and_check(from: &Arc<Companion>, to: &Arc<Companion>, to_phone: &str, body: &str) -> String {
    let sent = from.client.send_message(Jid::pn(to_phone), text(body)).await.expect("sent");
    let id = sent.message_id.clone();
    from.wait_for(WAIT, |e| match e {
        Event::ServerAck(a) if a.id == id && a.class.as_deref() == Some("message") => Some(()),
        _ => None,
    })
    .await
    .expect("ServerAck");
    let (sender, got, _) = to.wait_for(WAIT, |e| received(e, &id)).await.expect("the message arrives");
    assert_eq!(got, body);
    assert_ne!(sender, to_phone, "the sender is the other account");
    from.wait_for(WAIT, |e| receipt(e, &id, ReceiptType::Delivered)).await.expect("Delivered");

    let chat = Jid::pn(sender.as_str());
    to.client.mark_as_read(&chat, None, &[id.as_str()]).await.expect("mark read");
    from.wait_for(WAIT, |e| receipt(e, &id, ReceiptType::Read)).await.expect("Read");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_both_ways_with_server_ack_delivered_read_and_played() {
    let fake = fake().await;
    let (alice, bob) = tokio::join!(
        Companion::link(&fake.server, &fake.ws_url, "15551001", Options::named("Alice")),
        Companion::link(&fake.server, &fake.ws_url, "15551002", Options::named("Bob")),
    );
    let (alice, bob) = (Arc::new(alice.expect("alice linked")), Arc::new(bob.expect("bob linked")));

    let id = send_and_check(&alice, &bob, "15551002", "hello bob").await;
    let push_name = bob
        .wait_for(WAIT, |e| match e {
            Event::Messages(b) => {
                b.messages.iter().find(|m| m.info.id == id).map(|m| m.info.push_name.clone())
            }
            _ => None,
        })
        .await
        .expect("a message");
    assert_eq!(push_name, "Alice", "the sender's push name travels as notify");
    bob.client.mark_as_played(&Jid::pn("15551001"), None, &[id.as_str()]).await.expect("played");
    alice.wait_for(WAIT, |e| receipt(e, &id, ReceiptType::Played)).await.expect("Played");
    let _ = send_and_check(&bob, &alice, "15551001", "hi alice").await;
    let _ = send_and_check(&alice, &bob, "15551002", "second message, existing session").await;

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
    bob.stop().await;
}

/// The message with this id as a copy of one's own outgoing message.
fn own_copy(event: &Event, id: &str) -> Option<String> {
    let Event::Messages(batch) = event else { return None };
    batch
        .messages
        .iter()
        .find(|m| m.info.id == id && m.info.source.is_from_me)
        .map(|m| m.message.conversation.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_of_an_account_gets_the_message_and_own_devices_get_copies() {
    let fake = fake().await;
    let alice1 = common::link(&fake, "15551101", "Alice").await;
    // Linked after alice1 cached its own device list: the devices
    // notification tells alice1 about it.
    let (alice2, bob) =
        tokio::join!(common::link(&fake, "15551101", "Alice"), common::link(&fake, "15551102", "Bob"));

    let sent = bob.client.send_message(Jid::pn("15551101"), text("to both of you")).await.expect("sent");
    let id = sent.message_id;
    for alice in [&alice1, &alice2] {
        let (_, body, _) = alice.wait_for(WAIT, |e| received(e, &id)).await.expect("each device gets it");
        assert_eq!(body, "to both of you");
    }

    let sent =
        alice1.client.send_message(Jid::pn("15551102"), text("from my first device")).await.expect("sent");
    let id = sent.message_id;
    bob.wait_for(WAIT, |e| received(e, &id)).await.expect("bob gets it");
    let copy = alice2.wait_for(WAIT, |e| own_copy(e, &id)).await.expect("the other own device gets a copy");
    assert_eq!(copy, "from my first device");

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    for c in [alice1, alice2, bob] {
        c.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_receipt_after_a_lost_session_recovers_the_message() {
    use whatsapp_rust::store::traits::SignalStore;
    use whatsapp_rust::wacore::types::jid::JidExt;

    let fake = fake().await;
    let (alice, bob) =
        tokio::join!(common::link(&fake, "15551201", "Alice"), common::link(&fake, "15551202", "Bob"));
    let (alice, bob) = (Arc::new(alice), Arc::new(bob));
    send_and_check(&alice, &bob, "15551202", "first, builds the session").await;

    // Bob loses his session with Alice's device (a restore from an old backup).
    bob.stop().await;
    let accounts = common::get(format!("{}/accounts", fake.control_url)).await;
    let alice_lid = accounts
        .as_array()
        .and_then(|a| a.iter().find(|acc| acc["phone"] == "15551201"))
        .and_then(|acc| acc["lid"].as_str())
        .expect("alice's lid")
        .to_owned();
    for jid in [Jid::pn_device("15551201", 1), Jid::lid_device(alice_lid.as_str(), 1)] {
        bob.backend.delete_session(&jid.to_protocol_address_string()).await.expect("delete session");
    }
    let bob = Companion::start(
        &fake.ws_url,
        Options { backend: Some(bob.backend.clone()), ..Options::named("Bob") },
    )
    .await
    .expect("bob again");
    bob.wait_for(WAIT, |e| matches!(e, Event::Connected(_)).then_some(())).await.expect("bob connected");

    let retry = bob.client.wait_for_sent_node(NodeFilter::tag("receipt").attr("type", "retry"));
    let sent = alice.client.send_message(Jid::pn("15551202"), text("after the loss")).await.expect("sent");
    let id = sent.message_id;
    let (_, body, _) = bob.wait_for(WAIT, |e| received(e, &id)).await.expect("recovered through a retry");
    assert_eq!(body, "after the loss");
    tokio::time::timeout(WAIT, retry).await.expect("in time").expect("bob asked for a retry");
    alice.wait_for(WAIT, |e| receipt(e, &id, ReceiptType::Delivered)).await.expect("then delivered");

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
    bob.stop().await;
}
