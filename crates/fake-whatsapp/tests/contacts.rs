//! Virtual contacts: a real client inside the fake that a test makes write
//! to a linked client, and that reports what it received and which receipts
//! it sent.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

use common::{fake, get, link, post, receipt, received, text, unhandled, WAIT};
use fake_whatsapp::companion::image_message;
use serde_json::json;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::Jid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_contact_and_a_client_exchange_messages_and_receipts() {
    let fake = fake().await;
    let (started, alice) = tokio::join!(
        post(format!("{}/contacts", fake.control_url), json!({"phone": "15554001", "name": "Carol"})),
        link(&fake, "15554002", "Alice"),
    );
    assert_eq!(started.0, 200, "{}", started.1);

    // The client writes to the contact: delivered, then read.
    let sent = alice.client.send_message(Jid::pn("15554001"), text("hello carol")).await.expect("sent");
    let id = sent.message_id;
    alice.wait_for(WAIT, |e| receipt(e, &id, ReceiptType::Delivered)).await.expect("Delivered");
    alice.wait_for(WAIT, |e| receipt(e, &id, ReceiptType::Read)).await.expect("Read");
    let inbox = get(format!("{}/contacts/15554001/messages", fake.control_url)).await;
    assert_eq!(
        inbox,
        json!([{"id": id, "from": "15554002", "type": "text", "body": "hello carol", "receipts": ["delivered", "read"]}])
    );

    // The contact writes to the client.
    let (status, body) = post(
        format!("{}/contacts/15554001/messages", fake.control_url),
        json!({"to": "15554002", "type": "text", "text": {"body": "hi alice, carol here"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().expect("message id").to_owned();
    let (from, text_body, _) = alice.wait_for(WAIT, |e| received(e, &id)).await.expect("alice gets it");
    assert_eq!((from.as_str(), text_body.as_str()), ("15554001", "hi alice, carol here"));
    let names = alice.event_names();
    assert!(names.iter().any(|n| n == "Messages"), "{names:?}");
    assert!(alice.count(|e| matches!(e, Event::Connected(_))) >= 1);

    let accounts = get(format!("{}/accounts", fake.control_url)).await;
    let carol = accounts.as_array().and_then(|a| a.iter().find(|x| x["phone"] == "15554001")).cloned();
    assert_eq!(carol.map(|c| c["name"].clone()), Some(json!("Carol")));
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_routes_refuse_bad_input() {
    let fake = fake().await;
    let (status, _) = post(format!("{}/contacts", fake.control_url), json!({"phone": "not a number"})).await;
    assert_eq!(status, 400);
    let (status, _) = post(
        format!("{}/contacts/15554999/messages", fake.control_url),
        json!({"to": "1", "type": "text", "text": {"body": "x"}}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_between_a_virtual_contact_and_a_client() {
    use base64::Engine;
    use sha2::Digest;
    use whatsapp_rust::download::MediaType;
    use whatsapp_rust::upload::UploadOptions;

    let fake = fake().await;
    let (started, alice) = tokio::join!(
        post(format!("{}/contacts", fake.control_url), json!({"phone": "15554101"})),
        link(&fake, "15554102", "Alice"),
    );
    assert_eq!(started.0, 200, "{}", started.1);

    // Contact → client: the client downloads exactly what the contact sent.
    let picture: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let (status, body) = post(
        format!("{}/contacts/15554101/messages", fake.control_url),
        json!({"to": "15554102", "type": "image", "image": {
            "data": base64::engine::general_purpose::STANDARD.encode(&picture), "caption": "look"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let image = alice
        .wait_for(WAIT, |e| common::message(e, &id)?.image_message.into_option())
        .await
        .expect("the image arrives");
    assert_eq!(alice.client.download(&image).await.expect("download"), picture);

    // Client → contact: the contact reports the hash of what it downloaded.
    let photo: Vec<u8> = (0..9000u32).map(|i| (i * 7 % 253) as u8).collect();
    let up =
        alice.client.upload(photo.clone(), MediaType::Image, UploadOptions::default()).await.expect("upload");
    let message = image_message(up, "image/jpeg", None);
    let id = alice.client.send_message(Jid::pn("15554101"), message).await.expect("sent").message_id;
    alice.wait_for(WAIT, |e| receipt(e, &id, ReceiptType::Delivered)).await.expect("Delivered");
    let inbox = get(format!("{}/contacts/15554101/messages", fake.control_url)).await;
    let expected = format!("{:x}", sha2::Sha256::digest(&photo));
    let got =
        inbox.as_array().and_then(|a| a.iter().find(|m| m["id"] == id.as_str())).cloned().expect("listed");
    assert_eq!((got["type"].clone(), got["sha256"].clone()), (json!("image"), json!(expected)));
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
}
