//! S2: two linked accounts exchange text through the fake (which only routes
//! the ciphertexts) and see server acks, delivery and read receipts.

mod common;

use std::sync::Arc;

use common::{fake, receipt, received, text, unhandled, WAIT};
use fake_whatsapp::companion::{Companion, Options};
use whatsapp_rust::types::events::Event;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::Jid;

async fn send_and_check(from: &Arc<Companion>, to: &Arc<Companion>, to_phone: &str, body: &str) {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_both_ways_with_server_ack_delivered_and_read() {
    let fake = fake().await;
    let (alice, bob) = tokio::join!(
        Companion::link(&fake.server, &fake.ws_url, "15551001", Options::named("Alice")),
        Companion::link(&fake.server, &fake.ws_url, "15551002", Options::named("Bob")),
    );
    let (alice, bob) = (Arc::new(alice.expect("alice linked")), Arc::new(bob.expect("bob linked")));

    send_and_check(&alice, &bob, "15551002", "hello bob").await;
    send_and_check(&bob, &alice, "15551001", "hi alice").await;
    send_and_check(&alice, &bob, "15551002", "second message, existing session").await;

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
    bob.stop().await;
}
