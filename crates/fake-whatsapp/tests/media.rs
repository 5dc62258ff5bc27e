//! S4: media travels through the fake's HTTPS endpoint as ciphertext; the
//! recipient downloads and decrypts it byte-identical.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

use common::{fake, link, unhandled, WAIT};
use fake_whatsapp::companion::{document_message, image_message};
use whatsapp_rust::download::MediaType;
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::Jid;

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_and_a_document_arrive_byte_identical() {
    let fake = fake().await;
    let (alice, bob) = tokio::join!(link(&fake, "15555001", "Alice"), link(&fake, "15555002", "Bob"));

    let image = bytes(70_000, 7);
    let up =
        alice.client.upload(image.clone(), MediaType::Image, UploadOptions::default()).await.expect("upload");
    let message = image_message(up, "image/png", Some("a picture".into()));
    let id = alice.client.send_message(Jid::pn("15555002"), message).await.expect("sent").message_id;
    let got = bob
        .wait_for(WAIT, |e| common::message(e, &id)?.image_message.into_option())
        .await
        .expect("the image message arrives");
    let downloaded = bob.client.download(&got).await.expect("download");
    assert_eq!(downloaded, image, "the image is byte-identical");

    let document = bytes(12_345, 3);
    let up = alice
        .client
        .upload(document.clone(), MediaType::Document, UploadOptions::default())
        .await
        .expect("upload");
    let message = document_message(up, "application/pdf", "report.pdf");
    let id = alice.client.send_message(Jid::pn("15555002"), message).await.expect("sent").message_id;
    let got = bob
        .wait_for(WAIT, |e| common::message(e, &id)?.document_message.into_option())
        .await
        .expect("the document message arrives");
    let downloaded = bob.client.download(&got).await.expect("download");
    assert_eq!(downloaded, document, "the document is byte-identical");

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
    bob.stop().await;
}
