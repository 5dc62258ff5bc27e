//! Media: upload, send by id or as base64 between sim sessions, download with ranges, and
//! the type and size rules.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{eventually, nz, TestServer};

/// A file that sniffs as PNG: the signature, then filler.
fn png(size: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..size.saturating_sub(bytes.len())).map(|i| (i % 251) as u8));
    bytes
}

fn pdf() -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..5000).map(|i| (i % 13) as u8 + b'a'));
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

async fn upload(server: &TestServer, bytes: Vec<u8>, content_type: &str, query: &str) -> (StatusCode, Value) {
    let request = server
        .request(Method::POST, &format!("/v1/media{query}"))
        .header("content-type", content_type)
        .body(bytes);
    server.call(request).await
}

async fn download(server: &TestServer, id: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = server.request(Method::GET, &format!("/v1/media/{id}"));
    if let Some(range) = range {
        request = request.header("range", range);
    }
    request.send().await.expect("download")
}

/// The message bob received last, once it arrived.
async fn received(server: &TestServer, kind: &str) -> Value {
    eventually(|| async {
        let messages = server.messages("bob", "in").await;
        messages.into_iter().rev().find(|m| m["type"] == kind)
    })
    .await
}

#[tokio::test]
async fn media_sent_by_id_or_as_data_arrives_byte_for_byte() {
    let server = TestServer::start().await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;

    // The type comes from the bytes, whatever the upload says.
    let image = png(20_000);
    let (status, media) = upload(&server, image.clone(), "application/pdf", "?filename=cat.png").await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    assert_eq!(media["mime_type"], "image/png");
    assert_eq!(media["size"], 20_000);
    assert_eq!(media["sha256"], sha256(&image));
    assert!(media["id"].as_str().unwrap().starts_with("med_"));

    let body = json!({ "to": "15550002222", "type": "image", "image": { "media_id": media["id"], "caption": "a cat" } });
    let (status, sent) = server.post("/v1/sessions/alice/messages?wait=true", body).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let got = received(&server, "image").await;
    assert_eq!(got["image"]["caption"], "a cat");
    assert_eq!(got["image"]["sha256"], sha256(&image));
    assert_eq!(got["image"]["mime_type"], "image/png");
    let bytes = download(&server, got["image"]["id"].as_str().unwrap(), None).await;
    assert_eq!(bytes.status(), StatusCode::OK);
    assert_eq!(bytes.headers()["content-type"], "image/png");
    assert_eq!(bytes.headers()["content-disposition"], "inline; filename=\"cat.png\"");
    assert_eq!(sha256(&bytes.bytes().await.unwrap()), sha256(&image));

    // A document as base64, and a voice note.
    let document = pdf();
    let data = base64::engine::general_purpose::STANDARD.encode(&document);
    let body = json!({ "to": "15550002222", "type": "document", "document": { "data": format!("data:application/pdf;base64,{data}"), "filename": "report.pdf", "caption": "Q3" } });
    let (status, sent) = server.post("/v1/sessions/alice/messages", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["document"]["mime_type"], "application/pdf");
    let got = received(&server, "document").await;
    assert_eq!(got["document"]["filename"], "report.pdf");
    assert_eq!(got["document"]["sha256"], sha256(&document));
    let file = download(&server, got["document"]["id"].as_str().unwrap(), None).await;
    assert_eq!(file.headers()["content-disposition"], "inline; filename=\"report.pdf\"");
    assert_eq!(sha256(&file.bytes().await.unwrap()), sha256(&document));

    let ogg = [b"OggS\0\x02".as_slice(), &[7u8; 3000]].concat();
    let (_, voice) = upload(&server, ogg.clone(), "audio/whatever", "").await;
    assert_eq!(voice["mime_type"], "audio/ogg", "{voice}");
    let body = json!({ "to": "15550002222", "type": "audio", "audio": { "id": voice["id"], "voice": true } });
    let (status, sent) = server.post("/v1/sessions/alice/messages", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let got = received(&server, "audio").await;
    assert_eq!(got["audio"]["voice"], true);
    assert_eq!(got["audio"]["sha256"], sha256(&ogg));
}

#[tokio::test]
async fn downloads_answer_ranges() {
    let server = TestServer::start().await;
    let bytes = png(1_000);
    let (_, media) = upload(&server, bytes.clone(), "image/png", "").await;
    let id = media["id"].as_str().unwrap();

    let part = download(&server, id, Some("bytes=100-199")).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 100-199/1000");
    assert_eq!(part.headers()["content-length"], "100");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[100..200]);
    let tail = download(&server, id, Some("bytes=-10")).await;
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &bytes[990..]);
    let outside = download(&server, id, Some("bytes=1000-")).await;
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(outside.headers()["content-range"], "bytes */1000");
    let whole = download(&server, id, None).await;
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.bytes().await.unwrap().len(), 1000);

    let (status, answer) = server.get("/v1/media/med_01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let anonymous = reqwest::get(format!("{}/v1/media/{id}", server.base)).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn media_breaking_the_rules_is_refused_before_anything_is_queued() {
    let server = TestServer::start_with(|c| {
        c.media.max_image_bytes = 1_000;
        c.media.max_document_bytes = nz(10_000);
        c.media.max_video_bytes = 10_000;
        c.media.max_audio_bytes = 10_000;
        c.media.max_sticker_bytes = 10_000;
    })
    .await;
    server.link("alice", "15550001111").await;
    let (_, small) = upload(&server, png(500), "image/png", "").await;
    let (_, big) = upload(&server, png(2_000), "image/png", "").await;
    let (_, document) = upload(&server, pdf(), "application/pdf", "").await;
    let (status, too_big) = upload(&server, png(20_000), "image/png", "").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{too_big}");
    assert_eq!(too_big["error"]["code"], "media_too_large");
    let (status, empty) = upload(&server, Vec::new(), "image/png", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{empty}");

    let cases = [
        (
            json!({ "type": "image", "image": { "media_id": document["id"] } }),
            "image.media_id",
            "image/jpeg, image/png",
        ),
        (
            json!({ "type": "image", "image": { "media_id": big["id"] } }),
            "image.media_id",
            "at most 1000 bytes",
        ),
        (
            json!({ "type": "sticker", "sticker": { "media_id": small["id"] } }),
            "sticker.media_id",
            "image/webp",
        ),
        (json!({ "type": "audio", "audio": { "media_id": small["id"] } }), "audio.media_id", "audio/"),
        (
            json!({ "type": "image", "image": { "media_id": "med_nope" } }),
            "image.media_id",
            "no uploaded media",
        ),
        (json!({ "type": "image", "image": { "link": "ftp://example.com/cat.png" } }), "image.link", "https"),
        (json!({ "type": "image", "image": { "data": "***" } }), "image.data", "base64"),
        (json!({ "type": "image", "image": {} }), "image", "exactly one"),
        (json!({ "type": "image" }), "image", "required"),
        (
            json!({ "type": "document", "document": { "media_id": document["id"], "voice": true } }),
            "document.voice",
            "audio",
        ),
    ];
    for (mut body, field, says) in cases {
        body["to"] = json!("15550002222");
        let (status, answer) = server.post("/v1/sessions/alice/messages", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(says), "{answer}");
    }
    assert!(server.messages("alice", "out").await.is_empty(), "nothing was queued");
}

/// A file server on a local port: `/files/cat.png` is `bytes`, anything else 404.
#[allow(clippy::disallowed_methods, reason = "a test's own file server, not a route of the API")]
async fn file_server(bytes: Vec<u8>) -> String {
    let app = axum::Router::new().route(
        "/files/cat.png",
        axum::routing::get(move || {
            let bytes = bytes.clone();
            async move { ([("content-type", "text/html")], bytes) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_link_is_downloaded_and_sent_but_not_from_a_private_address_by_default() {
    let image = png(3_000);
    let files = file_server(image.clone()).await;
    let server = TestServer::start_with(|c| c.media.allow_private_links = true).await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let body = json!({ "to": "15550002222", "type": "image", "image": { "link": format!("{files}/files/cat.png") } });
    let (status, sent) = server.post("/v1/sessions/alice/messages", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["image"]["mime_type"], "image/png", "sniffed, not the server's content-type");
    let got = received(&server, "image").await;
    assert_eq!(got["image"]["sha256"], sha256(&image));
    let file = download(&server, got["image"]["id"].as_str().unwrap(), None).await;
    assert_eq!(sha256(&file.bytes().await.unwrap()), sha256(&image));

    let body =
        json!({ "to": "15550002222", "type": "image", "image": { "link": format!("{files}/missing.png") } });
    let (status, answer) = server.post("/v1/sessions/alice/messages", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("404"), "{answer}");

    let strict = TestServer::start().await;
    strict.link("alice", "15550001111").await;
    let body = json!({ "to": "15550002222", "type": "image", "image": { "link": format!("{files}/files/cat.png") } });
    let (status, answer) = strict.post("/v1/sessions/alice/messages", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"]["field"], "image.link");
    assert!(answer["error"]["message"].as_str().unwrap().contains("private"), "{answer}");
    assert!(strict.messages("alice", "out").await.is_empty());
}

/// The S3-compatible server the test script started (`.ci/run` starts moto); CI always has one.
fn s3_endpoint() -> Option<String> {
    match std::env::var("WAGATE_TEST_S3_ENDPOINT") {
        Ok(url) => Some(url.trim_end_matches('/').to_owned()),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI runs the S3 tests: start an S3-compatible server and set WAGATE_TEST_S3_ENDPOINT")
        }
        Err(_) => {
            eprintln!(
                "S3 test not run: WAGATE_TEST_S3_ENDPOINT is not set (.ci/run starts moto and sets it)"
            );
            None
        }
    }
}

/// A server keeping media in a new bucket of the S3 server at `endpoint`.
async fn s3_server(endpoint: &str, bucket: &str, presigned: bool) -> TestServer {
    TestServer::start_with(|c| {
        c.media_url = Some(format!("s3://{bucket}/wagate/media"));
        c.media.s3_endpoint = Some(endpoint.to_owned());
        c.media.s3_allow_http = true;
        c.media.s3_access_key_id = Some("test".into());
        c.media.s3_secret_access_key = Some("test".into());
        c.media.presigned_downloads = presigned;
    })
    .await
}

#[tokio::test]
async fn media_can_live_in_s3() {
    let Some(endpoint) = s3_endpoint() else { return };
    let bucket = format!("wagate-{:016x}", rand::random::<u64>());
    let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap();
    assert!(created.status().is_success(), "creating bucket {bucket}: {}", created.status());

    let server = s3_server(&endpoint, &bucket, false).await;
    server.link("alice", "15550001111").await;
    server.link("bob", "15550002222").await;
    let image = png(50_000);
    let (status, media) = upload(&server, image.clone(), "image/png", "").await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let id = media["id"].as_str().unwrap().to_owned();
    // The bytes are in the bucket, under the prefix.
    let listed = reqwest::get(format!("{endpoint}/{bucket}?list-type=2&prefix=wagate/media/")).await.unwrap();
    let listing = listed.text().await.unwrap();
    assert!(listing.contains(&format!("<Key>wagate/media/{id}</Key>")), "{listing}");

    let body = json!({ "to": "15550002222", "type": "image", "image": { "media_id": id } });
    let (status, sent) = server.post("/v1/sessions/alice/messages", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let got = received(&server, "image").await;
    let got_id = got["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(sha256(&download(&server, &got_id, None).await.bytes().await.unwrap()), sha256(&image));
    let part = download(&server, &got_id, Some("bytes=10-19")).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().to_vec(), image[10..20].to_vec());
    drop(server);

    // Presigned: wagate answers with where to fetch it, and that URL needs no key.
    let presigning = s3_server(&endpoint, &bucket, true).await;
    let (_, media) = upload(&presigning, image.clone(), "image/png", "").await;
    let no_redirects =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = no_redirects
        .get(format!("{}/v1/media/{}", presigning.base, media["id"].as_str().unwrap()))
        .bearer_auth(crate::common::KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&endpoint) && location.contains("X-Amz-Signature"), "{location}");
    let fetched = reqwest::get(location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(sha256(&fetched.bytes().await.unwrap()), sha256(&image));
}

#[tokio::test]
async fn old_media_is_deleted_when_retention_is_set() {
    let server = TestServer::start_with(|c| {
        c.media.retention_ms = 300;
        c.media.retention_sweep_ms = nz(50);
    })
    .await;
    let (_, old) = upload(&server, png(1_000), "image/png", "").await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    assert_eq!(download(&server, &old_id, None).await.status(), StatusCode::OK);
    let file = server.dir.path().join("media").join(&old_id);
    assert!(file.exists(), "the bytes are on disk");
    eventually(|| async {
        (download(&server, &old_id, None).await.status() == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert!(!file.exists(), "the bytes are gone too");
    let (_, fresh) = upload(&server, png(1_000), "image/png", "").await;
    assert_eq!(download(&server, fresh["id"].as_str().unwrap(), None).await.status(), StatusCode::OK);
}
