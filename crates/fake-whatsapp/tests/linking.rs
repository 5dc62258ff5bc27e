//! S1: QR linking, login, IK resumption, and refused logins, each with a
//! real whatsapp-rust client over the WebSocket.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

use common::{device, fake, post, unhandled, WAIT};
use fake_whatsapp::companion::{Companion, Options};
use serde_json::json;
use whatsapp_rust::store::traits::DeviceStore;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::wacore::libsignal::protocol::KeyPair;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_link_connects_and_a_reconnect_resumes_with_ik_without_a_qr() {
    let fake = fake().await;
    let alice = Companion::start(&fake.ws_url, Options::named("Alice")).await.expect("client");
    let qr = alice
        .wait_for(WAIT, |e| match e {
            Event::PairingQrCode(q) => Some(q.code.clone()),
            _ => None,
        })
        .await
        .expect("a QR code");

    let (status, linked) =
        post(format!("{}/scan", fake.control_url), json!({"qr": qr, "phone": "15550001"})).await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(linked["device"], 1);
    let scanned = std::time::Instant::now();

    let paired = alice
        .wait_for(WAIT, |e| match e {
            Event::PairSuccess(p) => Some(p.id.to_string()),
            _ => None,
        })
        .await
        .expect("PairSuccess");
    assert_eq!(paired, "15550001:1@s.whatsapp.net");
    alice.wait_for(WAIT, |e| matches!(e, Event::Connected(_)).then_some(())).await.expect("Connected");
    // A client waits 10 s for the phone's app-state key share before it
    // connects; the fake's phone sends one, so it connects at once.
    assert!(
        scanned.elapsed() < std::time::Duration::from_secs(8),
        "connected {:?} after the scan",
        scanned.elapsed()
    );
    let names = alice.event_names();
    let pos = |n: &str| names.iter().position(|x| x == n);
    assert!(pos("PairSuccess") < pos("Connected"), "PairSuccess before Connected: {names:?}");

    let dev = device(&fake, "15550001", 1).await;
    assert_eq!(dev["last_pattern"], "xx", "first login after pairing is a full XX: {dev}");
    assert_eq!(dev["online"], true);
    assert!(dev["prekeys"].as_u64().unwrap_or(0) > 0, "the client uploaded prekeys: {dev}");

    let qrs_before = alice.count(|e| matches!(e, Event::PairingQrCode(_)));
    alice.client.reconnect().await;
    alice
        .wait_for_nth(WAIT, 2, |e| matches!(e, Event::Connected(_)).then_some(()))
        .await
        .expect("second Connected");
    let dev = device(&fake, "15550001", 1).await;
    assert_eq!(dev["last_pattern"], "ik", "a linked client resumes with IK: {dev}");
    assert_eq!(alice.count(|e| matches!(e, Event::PairingQrCode(_))), qrs_before, "no new QR code");

    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_of_an_unknown_qr_code_is_refused() {
    let fake = fake().await;
    let (status, body) = post(
        format!("{}/scan", fake.control_url),
        json!({"qr": "2@nope,AAAA,AAAA,AAAA,1", "phone": "15550009"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_with_another_noise_key_is_refused_with_401() {
    let fake = fake().await;
    let alice = Companion::link(&fake.server, &fake.ws_url, "15550002", Options::named("Alice"))
        .await
        .expect("linked");
    alice.stop().await;

    // The same account and device id, but a different Noise key.
    let mut stored = alice.backend.load().await.expect("load").expect("a stored device");
    stored.noise_key = KeyPair::generate(&mut rand::rng());
    alice.backend.save(&stored).await.expect("save");
    let impostor = Companion::start(
        &fake.ws_url,
        Options { backend: Some(alice.backend.clone()), ..Options::named("Alice") },
    )
    .await
    .expect("client");
    let on_connect = impostor
        .wait_for(WAIT, |e| match e {
            Event::LoggedOut(l) => Some(l.on_connect),
            _ => None,
        })
        .await
        .expect("LoggedOut");
    assert!(on_connect, "refused at login, not while connected");
    assert_eq!(impostor.count(|e| matches!(e, Event::Connected(_))), 0);
    let dev = device(&fake, "15550002", 1).await;
    assert_eq!(dev["logins"], 1, "the refused login did not count: {dev}");
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    impostor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_code_linking_connects() {
    let fake = fake().await;
    let alice = Companion::start(
        &fake.ws_url,
        Options { pair_code_phone: Some("15550003".into()), ..Options::named("Alice") },
    )
    .await
    .expect("client");
    let code = alice
        .wait_for(WAIT, |e| match e {
            Event::PairingCode(p) => Some(p.code.clone()),
            _ => None,
        })
        .await
        .expect("a pairing code");

    let (status, linked) =
        post(format!("{}/pair", fake.control_url), json!({"code": code, "phone": "15550003"})).await;
    assert_eq!(status, 200, "{linked}");
    let paired = alice
        .wait_for(WAIT, |e| match e {
            Event::PairSuccess(p) => Some(p.id.to_string()),
            _ => None,
        })
        .await
        .expect("PairSuccess");
    assert_eq!(paired, "15550003:1@s.whatsapp.net");
    alice.wait_for(WAIT, |e| matches!(e, Event::Connected(_)).then_some(())).await.expect("Connected");
    assert_eq!(device(&fake, "15550003", 1).await["online"], true);
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pairing_code_does_not_link() {
    let fake = fake().await;
    let alice = Companion::start(
        &fake.ws_url,
        Options { pair_code_phone: Some("15550004".into()), ..Options::named("Alice") },
    )
    .await
    .expect("client");
    let code = alice
        .wait_for(WAIT, |e| match e {
            Event::PairingCode(p) => Some(p.code.clone()),
            _ => None,
        })
        .await
        .expect("a pairing code");
    // Another valid-looking code: one character changed.
    let wrong: String = code
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    let (status, body) =
        post(format!("{}/pair", fake.control_url), json!({"code": wrong, "phone": "15550004"})).await;
    assert_ne!(status, 200, "{body}");
    assert_eq!(alice.count(|e| matches!(e, Event::PairSuccess(_))), 0);
    assert_eq!(unhandled(&fake).await, Vec::<serde_json::Value>::new());
    alice.stop().await;
}
