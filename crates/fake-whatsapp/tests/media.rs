//! S4: media travels through the fake's HTTPS endpoint as ciphertext; the
//! recipient downloads and decrypts it byte-identical.

mod common;

use common::{fake, link, unhandled, WAIT};
use whatsapp_rust::download::MediaType;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::waproto::whatsapp as wa;
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
    let message = wa::Message {
        image_message: wa::message::ImageMessage {
            url: Some(up.url.clone()),
            direct_path: Some(up.direct_path.clone()),
            media_key: Some(up.media_key.to_vec()),
            file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
            file_sha256: Some(up.file_sha256.to_vec()),
            file_length: Some(up.file_length),
            mimetype: Some("image/png".into()),
            caption: Some("a picture".into()),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    };
    let id = alice.client.send_message(Jid::pn("15555002"), message).await.expect("sent").message_id;
    let got = bob
        .wait_for(WAIT, |e| match e {
            Event::Messages(b) => b
                .messages
                .iter()
                .find(|m| m.info.id == id)
                .and_then(|m| m.message.image_message.clone().into_option()),
            _ => None,
        })
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
    let message = wa::Message {
        document_message: wa::message::DocumentMessage {
            url: Some(up.url.clone()),
            direct_path: Some(up.direct_path.clone()),
            media_key: Some(up.media_key.to_vec()),
            file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
            file_sha256: Some(up.file_sha256.to_vec()),
            file_length: Some(up.file_length),
            mimetype: Some("application/pdf".into()),
            file_name: Some("report.pdf".into()),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    };
    let id = alice.client.send_message(Jid::pn("15555002"), message).await.expect("sent").message_id;
    let got = bob
        .wait_for(WAIT, |e| match e {
            Event::Messages(b) => b
                .messages
                .iter()
                .find(|m| m.info.id == id)
                .and_then(|m| m.message.document_message.clone().into_option()),
            _ => None,
        })
        .await
        .expect("the document message arrives");
    let downloaded = bob.client.download(&got).await.expect("download");
    assert_eq!(downloaded, document, "the document is byte-identical");

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
    bob.stop().await;
}
