//! The web connector's device storage (whatsapp-rust's `Backend` traits over wagate's store),
//! checked against the traits' documented behaviour on SQLite and on PostgreSQL.

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::sync::Arc;

use serde_json::json;
use tempfile::TempDir;
use wagate_connect::web::SessionKeys;
use wagate_core::{ConnectorKind, DeviceKeys, SessionId};
use wagate_store::testing::{self, on_both_stores, TestDatabase};
use wagate_store::{NewSession, PgStore, SqliteStore, Store};
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::traits::{
    AppStateSyncKey, AppSyncStore, DeviceInfo, DeviceListRecord, DeviceStore, LidPnMappingEntry,
    MsgSecretEntry, MsgSecretStore, PendingInboundKey, PendingInboundRow, ProtocolStore, SignalStore,
    TcTokenEntry,
};
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::Jid;

/// A database for one test, with two sessions in it.
struct Fixture {
    store: Arc<dyn Store>,
    _db: Box<dyn std::any::Any>,
}

impl Fixture {
    async fn new(postgres: bool) -> Option<Self> {
        let (store, db): (Arc<dyn Store>, Box<dyn std::any::Any>) = if postgres {
            let db = TestDatabase::create(&testing::postgres_server()?).await.unwrap();
            (Arc::new(PgStore::open(&db.url, testing::keyring()).await.unwrap()), Box::new(db))
        } else {
            let dir = TempDir::new().unwrap();
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (Arc::new(SqliteStore::open(&url, testing::keyring()).await.unwrap()), Box::new(dir))
        };
        for id in ["ses_a", "ses_b"] {
            let new = NewSession {
                id: SessionId::parse(id).unwrap(),
                org_id: wagate_core::OrgId::default_org(),
                connector: ConnectorKind::Web,
                name: None,
                config: json!({}),
                metadata: json!({}),
            };
            store.create_session(new, chrono::Utc::now()).await.unwrap();
        }
        Some(Self { store, _db: db })
    }

    fn keys(&self, session: &str) -> SessionKeys {
        let store: Arc<dyn DeviceKeys> = self.store.clone();
        SessionKeys::new(store, SessionId::parse(session).unwrap())
    }
}

on_both_stores!(
    Fixture:
    identities_round_trip_and_mark_signal_state_per_user,
    sessions_round_trip_singly_and_in_batches,
    prekeys_load_in_batches_and_marking_uploaded_resurrects_nothing,
    signed_prekeys_and_sender_keys_round_trip,
    app_state_keys_versions_and_mutation_macs,
    sender_key_devices_merge_and_clear,
    lid_mappings_are_found_both_ways,
    base_keys_device_lists_and_group_metadata,
    tc_tokens_merge_atomically_and_expire_only_when_both_windows_passed,
    sent_messages_are_taken_once_and_expire,
    pending_inbound_round_trips_and_expires,
    message_secrets_merge_expiry_and_expire,
    the_device_is_created_saved_and_loaded,
    sessions_are_isolated_and_cleared_with_their_session,
);

async fn identities_round_trip_and_mark_signal_state_per_user(f: Fixture) {
    let keys = f.keys("ses_a");
    assert_eq!(keys.load_identity("5511@s.whatsapp.net").await.unwrap(), None);
    assert!(!keys.has_signal_state_for_user("5511").await.unwrap());
    keys.put_identity("5511@s.whatsapp.net", [1; 32]).await.unwrap();
    assert_eq!(keys.load_identity("5511@s.whatsapp.net").await.unwrap(), Some([1; 32]));
    keys.put_identity("5511@s.whatsapp.net", [2; 32]).await.unwrap();
    assert_eq!(keys.load_identity("5511@s.whatsapp.net").await.unwrap(), Some([2; 32]));
    // An identity alone counts as state for its user; a longer user with the same start does not.
    assert!(keys.has_signal_state_for_user("5511").await.unwrap());
    assert!(!keys.has_signal_state_for_user("551").await.unwrap());
    keys.put_identities_batch(&[("77:3@lid".into(), [3; 32]), ("78@lid".into(), [4; 32])]).await.unwrap();
    assert_eq!(keys.load_identity("77:3@lid").await.unwrap(), Some([3; 32]));
    assert_eq!(keys.load_identity("78@lid").await.unwrap(), Some([4; 32]));
    assert!(keys.has_signal_state_for_user("77").await.unwrap(), "device addresses are user:device@server");
    keys.delete_identity("5511@s.whatsapp.net").await.unwrap();
    assert_eq!(keys.load_identity("5511@s.whatsapp.net").await.unwrap(), None);
    assert!(!keys.has_signal_state_for_user("5511").await.unwrap());
}

async fn sessions_round_trip_singly_and_in_batches(f: Fixture) {
    let keys = f.keys("ses_a");
    assert!(!keys.has_session("1@s.whatsapp.net").await.unwrap());
    keys.put_session("1@s.whatsapp.net", b"one").await.unwrap();
    assert_eq!(keys.get_session("1@s.whatsapp.net").await.unwrap(), Some(Bytes::from_static(b"one")));
    assert!(keys.has_session("1@s.whatsapp.net").await.unwrap());
    assert!(keys.has_signal_state_for_user("1").await.unwrap());
    // A batch writes all, and of a key given twice the last value stays.
    keys.put_sessions_batch(&[
        ("1@s.whatsapp.net".into(), Bytes::from_static(b"uno")),
        ("2:5@s.whatsapp.net".into(), Bytes::from_static(b"two")),
        ("1@s.whatsapp.net".into(), Bytes::from_static(b"eins")),
    ])
    .await
    .unwrap();
    assert_eq!(keys.get_session("1@s.whatsapp.net").await.unwrap(), Some(Bytes::from_static(b"eins")));
    assert_eq!(keys.get_session("2:5@s.whatsapp.net").await.unwrap(), Some(Bytes::from_static(b"two")));
    keys.delete_session("1@s.whatsapp.net").await.unwrap();
    assert_eq!(keys.get_session("1@s.whatsapp.net").await.unwrap(), None);
    keys.delete_session("never@s.whatsapp.net").await.unwrap();
    // A big batch spans several statements.
    let many: Vec<(Arc<str>, Bytes)> =
        (0..2500).map(|i| (Arc::from(format!("{i}@lid")), Bytes::from(vec![(i % 251) as u8; 8]))).collect();
    keys.put_sessions_batch(&many).await.unwrap();
    assert_eq!(keys.get_session("2499@lid").await.unwrap(), Some(Bytes::from(vec![(2499 % 251) as u8; 8])));
}

async fn prekeys_load_in_batches_and_marking_uploaded_resurrects_nothing(f: Fixture) {
    let keys = f.keys("ses_a");
    assert_eq!(keys.get_max_prekey_id().await.unwrap(), 0);
    keys.store_prekey(7, b"seven", false).await.unwrap();
    keys.store_prekeys_batch(&[(9, Bytes::from_static(b"nine")), (12, Bytes::from_static(b"twelve"))], true)
        .await
        .unwrap();
    assert_eq!(keys.load_prekey(7).await.unwrap(), Some(Bytes::from_static(b"seven")));
    assert_eq!(keys.load_prekey(8).await.unwrap(), None);
    // Only the keys that exist, in the order asked.
    let batch = keys.load_prekeys_batch(&[12, 8, 7]).await.unwrap();
    assert_eq!(batch, vec![(12, Bytes::from_static(b"twelve")), (7, Bytes::from_static(b"seven"))]);
    assert_eq!(keys.get_max_prekey_id().await.unwrap(), 12, "numerically, not as text");
    keys.remove_prekey(9).await.unwrap();
    keys.mark_prekeys_uploaded(&[7, 9]).await.unwrap();
    assert_eq!(keys.load_prekey(9).await.unwrap(), None, "a consumed key stays deleted");
    let uploaded =
        f.store.get_device_keys(&SessionId::parse("ses_a").unwrap(), "prekey", &["7"]).await.unwrap();
    assert_eq!(uploaded[0].number, 1);
    let many: Vec<(u32, Bytes)> =
        (100u32..1300).map(|i| (i, Bytes::from(i.to_be_bytes().to_vec()))).collect();
    keys.store_prekeys_batch(&many, false).await.unwrap();
    let ids: Vec<u32> = (100..1300).collect();
    assert_eq!(keys.load_prekeys_batch(&ids).await.unwrap().len(), 1200);
    assert_eq!(keys.get_max_prekey_id().await.unwrap(), 1299);
}

async fn signed_prekeys_and_sender_keys_round_trip(f: Fixture) {
    let keys = f.keys("ses_a");
    keys.store_signed_prekey(2, b"b").await.unwrap();
    keys.store_signed_prekey(1, b"a").await.unwrap();
    assert_eq!(keys.load_signed_prekey(1).await.unwrap(), Some(b"a".to_vec()));
    let mut all = keys.load_all_signed_prekeys().await.unwrap();
    all.sort();
    assert_eq!(all, vec![(1, b"a".to_vec()), (2, b"b".to_vec())]);
    keys.remove_signed_prekey(1).await.unwrap();
    assert_eq!(keys.load_signed_prekey(1).await.unwrap(), None);

    keys.put_sender_key("g1\u{1}5511:2", b"k1").await.unwrap();
    keys.put_sender_keys_batch(&[("g2::x".into(), Bytes::from_static(b"k2"))]).await.unwrap();
    assert_eq!(keys.get_sender_key("g1\u{1}5511:2").await.unwrap(), Some(b"k1".to_vec()));
    assert_eq!(keys.get_sender_key("g2::x").await.unwrap(), Some(b"k2".to_vec()));
    keys.delete_sender_key("g2::x").await.unwrap();
    assert_eq!(keys.get_sender_key("g2::x").await.unwrap(), None);
}

async fn app_state_keys_versions_and_mutation_macs(f: Fixture) {
    let keys = f.keys("ses_a");
    assert_eq!(keys.get_latest_sync_key_id().await.unwrap(), None);
    let key = |t| AppStateSyncKey { key_data: vec![1, 2, 3], fingerprint: vec![4], timestamp: t };
    keys.set_sync_key(&[0xAA, 0x01], key(10)).await.unwrap();
    keys.set_sync_key(&[0x00, 0xFF], key(5)).await.unwrap();
    let got = keys.get_sync_key(&[0xAA, 0x01]).await.unwrap().unwrap();
    assert_eq!((got.key_data, got.timestamp), (vec![1, 2, 3], 10));
    assert!(keys.get_sync_key(&[0xAA]).await.unwrap().is_none());
    assert_eq!(keys.get_latest_sync_key_id().await.unwrap(), Some(vec![0x00, 0xFF]), "the last stored");

    let fresh = keys.get_version("regular").await.unwrap();
    assert_eq!(fresh.version, 0);
    let mut state = fresh.clone();
    state.version = 42;
    state.hash = [7; 128];
    state.index_value_map.insert("idx".into(), vec![9]);
    keys.set_version("regular", state).await.unwrap();
    let stored = keys.get_version("regular").await.unwrap();
    assert_eq!((stored.version, stored.hash, stored.index_value_map["idx"].clone()), (42, [7; 128], vec![9]));
    assert_eq!(keys.get_version("critical_block").await.unwrap().version, 0);

    let mac = |i: u8, v: u8| AppStateMutationMAC { index_mac: vec![i; 32], value_mac: vec![v; 32] };
    keys.put_mutation_macs("regular", 1, &[mac(1, 10), mac(2, 20)]).await.unwrap();
    keys.put_mutation_macs("critical", 1, &[mac(1, 99)]).await.unwrap();
    assert_eq!(keys.get_mutation_mac("regular", &[1; 32]).await.unwrap(), Some(vec![10; 32]));
    assert_eq!(keys.get_mutation_mac("critical", &[1; 32]).await.unwrap(), Some(vec![99; 32]));
    let batch = keys.get_mutation_macs("regular", &[[1; 32], [2; 32], [3; 32]]).await.unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[&[2; 32]], vec![20; 32]);
    keys.delete_mutation_macs("regular", &[vec![1; 32]]).await.unwrap();
    assert_eq!(keys.get_mutation_mac("regular", &[1; 32]).await.unwrap(), None);
    keys.clear_mutation_macs("regular").await.unwrap();
    assert_eq!(keys.get_mutation_mac("regular", &[2; 32]).await.unwrap(), None);
    assert_eq!(
        keys.get_mutation_mac("critical", &[1; 32]).await.unwrap(),
        Some(vec![99; 32]),
        "other collections stay"
    );
}

async fn sender_key_devices_merge_and_clear(f: Fixture) {
    let keys = f.keys("ses_a");
    assert!(keys.get_sender_key_devices("g1@g.us").await.unwrap().is_empty());
    keys.set_sender_key_status("g1@g.us", &[("1:1@lid", true), ("2:0@lid", false)]).await.unwrap();
    keys.set_sender_key_status("g1@g.us", &[("2:0@lid", true)]).await.unwrap();
    keys.set_sender_key_status("g2@g.us", &[("1:1@lid", true), ("3:0@lid", true)]).await.unwrap();
    let mut g1 = keys.get_sender_key_devices("g1@g.us").await.unwrap();
    g1.sort();
    assert_eq!(g1, vec![("1:1@lid".into(), true), ("2:0@lid".into(), true)]);
    keys.delete_sender_key_device_rows(&["1:1@lid"]).await.unwrap();
    assert_eq!(keys.get_sender_key_devices("g1@g.us").await.unwrap(), vec![("2:0@lid".into(), true)]);
    assert_eq!(keys.get_sender_key_devices("g2@g.us").await.unwrap(), vec![("3:0@lid".into(), true)]);
    keys.clear_sender_key_devices("g1@g.us").await.unwrap();
    assert!(keys.get_sender_key_devices("g1@g.us").await.unwrap().is_empty());
    assert_eq!(keys.get_sender_key_devices("g2@g.us").await.unwrap().len(), 1);
    keys.clear_all_sender_key_devices().await.unwrap();
    assert!(keys.get_sender_key_devices("g2@g.us").await.unwrap().is_empty());
}

async fn lid_mappings_are_found_both_ways(f: Fixture) {
    let keys = f.keys("ses_a");
    let entry = |lid: &str, pn: &str, at| LidPnMappingEntry {
        lid: lid.into(),
        phone_number: pn.into(),
        created_at: at,
        updated_at: at,
        learning_source: "usync".into(),
    };
    assert!(keys.get_lid_mapping("100").await.unwrap().is_none());
    keys.put_lid_mapping(&entry("100", "5511", 1)).await.unwrap();
    keys.put_lid_mappings(&[entry("200", "5522", 2), entry("300", "5533", 3)]).await.unwrap();
    assert_eq!(keys.get_lid_mapping("200").await.unwrap().unwrap().phone_number, "5522");
    assert_eq!(keys.get_pn_mapping("5533").await.unwrap().unwrap().lid, "300");
    // A number that got a new LID answers the most recent one.
    keys.put_lid_mapping(&entry("101", "5511", 9)).await.unwrap();
    assert_eq!(keys.get_pn_mapping("5511").await.unwrap().unwrap().lid, "101");
    let mut all: Vec<String> =
        keys.get_all_lid_mappings().await.unwrap().into_iter().map(|e| e.lid).collect();
    all.sort();
    assert_eq!(all, vec!["100", "101", "200", "300"]);
}

async fn base_keys_device_lists_and_group_metadata(f: Fixture) {
    let keys = f.keys("ses_a");
    keys.save_base_key("1@lid", "M1", b"base").await.unwrap();
    assert!(keys.has_same_base_key("1@lid", "M1", b"base").await.unwrap());
    assert!(!keys.has_same_base_key("1@lid", "M1", b"other").await.unwrap());
    assert!(!keys.has_same_base_key("1@lid", "M2", b"base").await.unwrap());
    keys.delete_base_key("1@lid", "M1").await.unwrap();
    assert!(!keys.has_same_base_key("1@lid", "M1", b"base").await.unwrap());

    let record = |user: &str, devices: Vec<u32>| DeviceListRecord {
        user: user.into(),
        devices: devices.into_iter().map(|d| DeviceInfo::new(d, Some(1))).collect(),
        timestamp: 5,
        phash: Some("h".into()),
        raw_id: Some(3),
    };
    assert!(keys.get_devices("5511").await.unwrap().is_none());
    keys.update_device_list(record("5511", vec![0, 1])).await.unwrap();
    keys.update_device_lists(vec![record("5522", vec![0]), record("5511", vec![0, 1, 2])]).await.unwrap();
    let got = keys.get_devices("5511").await.unwrap().unwrap();
    assert_eq!(got.devices.iter().map(|d| d.device_id).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!((got.raw_id, got.phash.as_deref()), (Some(3), Some("h")));
    keys.delete_devices("5511").await.unwrap();
    assert!(keys.get_devices("5511").await.unwrap().is_none());
    assert!(keys.get_devices("5522").await.unwrap().is_some());

    assert_eq!(keys.get_group_metadata("g@g.us").await.unwrap(), None);
    keys.put_group_metadata("g@g.us", b"blob").await.unwrap();
    keys.put_group_metadata("g@g.us", b"blob2").await.unwrap();
    assert_eq!(keys.get_group_metadata("g@g.us").await.unwrap(), Some(b"blob2".to_vec()));
    keys.delete_group_metadata("g@g.us").await.unwrap();
    assert_eq!(keys.get_group_metadata("g@g.us").await.unwrap(), None);
}

async fn tc_tokens_merge_atomically_and_expire_only_when_both_windows_passed(f: Fixture) {
    let keys = f.keys("ses_a");
    let entry = |token: &[u8], at, sender| TcTokenEntry {
        token: token.to_vec(),
        token_timestamp: at,
        sender_timestamp: sender,
    };
    keys.put_tc_token("a@lid", &entry(b"ta", 100, None)).await.unwrap();
    assert_eq!(keys.get_tc_token("a@lid").await.unwrap().unwrap().token, b"ta");
    // The sender bucket only moves forward and keeps the token.
    keys.touch_tc_token_sender_timestamp("a@lid", 50).await.unwrap();
    keys.touch_tc_token_sender_timestamp("a@lid", 40).await.unwrap();
    let a = keys.get_tc_token("a@lid").await.unwrap().unwrap();
    assert_eq!((a.token, a.sender_timestamp), (b"ta".to_vec(), Some(50)));
    // Touching an unknown contact leaves a placeholder without a token.
    keys.touch_tc_token_sender_timestamp("b@lid", 70).await.unwrap();
    let b = keys.get_tc_token("b@lid").await.unwrap().unwrap();
    assert!(b.token.is_empty());
    // A received token: an older one does not replace a newer real token, but does a placeholder.
    keys.store_received_tc_token("a@lid", b"old", 90).await.unwrap();
    assert_eq!(keys.get_tc_token("a@lid").await.unwrap().unwrap().token, b"ta");
    keys.store_received_tc_token("a@lid", b"new", 120).await.unwrap();
    let a = keys.get_tc_token("a@lid").await.unwrap().unwrap();
    assert_eq!((a.token, a.token_timestamp, a.sender_timestamp), (b"new".to_vec(), 120, Some(50)));
    keys.store_received_tc_token("b@lid", b"tb", 10).await.unwrap();
    assert_eq!(keys.get_tc_token("b@lid").await.unwrap().unwrap().sender_timestamp, Some(70));

    keys.put_tc_token("c@lid", &entry(b"tc", 10, None)).await.unwrap();
    let mut jids = keys.get_all_tc_token_jids().await.unwrap();
    jids.sort();
    assert_eq!(jids, vec!["a@lid", "b@lid", "c@lid"]);
    // Cutoffs 100/60: a's token is live, b's sender bucket is live, c has neither.
    assert_eq!(keys.delete_expired_tc_tokens(100, 60).await.unwrap(), 1);
    assert!(keys.get_tc_token("c@lid").await.unwrap().is_none());
    keys.delete_tc_token("a@lid").await.unwrap();
    assert_eq!(keys.get_all_tc_token_jids().await.unwrap(), vec!["b@lid"]);
}

async fn sent_messages_are_taken_once_and_expire(f: Fixture) {
    let keys = f.keys("ses_a");
    keys.store_sent_message("c@s.whatsapp.net", "M1", b"payload").await.unwrap();
    keys.store_sent_message("c@s.whatsapp.net", "M2", b"p2").await.unwrap();
    assert_eq!(keys.take_sent_message("c@s.whatsapp.net", "M1").await.unwrap(), Some(b"payload".to_vec()));
    assert_eq!(keys.take_sent_message("c@s.whatsapp.net", "M1").await.unwrap(), None, "a take consumes");
    assert_eq!(keys.take_sent_message("other@s.whatsapp.net", "M2").await.unwrap(), None);
    let now = chrono::Utc::now().timestamp();
    assert_eq!(keys.delete_expired_sent_messages(now - 3600).await.unwrap(), 0);
    assert_eq!(keys.delete_expired_sent_messages(now + 10).await.unwrap(), 1);
    assert_eq!(keys.take_sent_message("c@s.whatsapp.net", "M2").await.unwrap(), None);
}

async fn pending_inbound_round_trips_and_expires(f: Fixture) {
    let keys = f.keys("ses_a");
    keys.store_pending_inbound("c", "s", "1", b"m1").await.unwrap();
    keys.store_pending_inbound_batch(&[
        PendingInboundRow { chat: "c", sender: "s", id: "2", message: b"m2" },
        PendingInboundRow { chat: "c", sender: "t", id: "1", message: b"m3" },
    ])
    .await
    .unwrap();
    assert_eq!(keys.get_pending_inbound("c", "s", "1").await.unwrap(), Some(b"m1".to_vec()));
    assert_eq!(
        keys.get_pending_inbound("c", "t", "1").await.unwrap(),
        Some(b"m3".to_vec()),
        "scoped by sender"
    );
    assert_eq!(
        keys.get_pending_inbound("c", "s", "1").await.unwrap(),
        Some(b"m1".to_vec()),
        "reading keeps it"
    );
    keys.delete_pending_inbound("c", "s", "1").await.unwrap();
    assert_eq!(keys.get_pending_inbound("c", "s", "1").await.unwrap(), None);
    keys.delete_pending_inbound_batch(&[PendingInboundKey { chat: "c", sender: "s", id: "2" }])
        .await
        .unwrap();
    assert_eq!(keys.get_pending_inbound("c", "s", "2").await.unwrap(), None);
    let now = chrono::Utc::now().timestamp();
    assert_eq!(keys.delete_expired_pending_inbound(now - 60).await.unwrap(), 0);
    assert_eq!(keys.delete_expired_pending_inbound(now + 10).await.unwrap(), 1);
    assert_eq!(keys.get_pending_inbound("c", "t", "1").await.unwrap(), None);
}

async fn message_secrets_merge_expiry_and_expire(f: Fixture) {
    let keys = f.keys("ses_a");
    let chat: Jid = "5511@s.whatsapp.net".parse().unwrap();
    let sender: Jid = "5511:3@s.whatsapp.net".parse().unwrap();
    keys.put_msg_secret("5511@s.whatsapp.net", "5511@s.whatsapp.net", "M0", &[1; 32]).await.unwrap();
    assert_eq!(
        keys.get_msg_secret("5511@s.whatsapp.net", "5511@s.whatsapp.net", "M0").await.unwrap(),
        Some(vec![1; 32])
    );
    let written = keys
        .put_msg_secrets(vec![
            MsgSecretEntry::new(&chat, &sender, "M1", [2; 32], 1000, 50),
            MsgSecretEntry::new(&chat, &sender, "M2", [3; 32], 2000, 0),
        ])
        .await
        .unwrap();
    assert_eq!(written, 2);
    // A later deadline wins, a zero time does not clobber a known one.
    keys.put_msg_secrets(vec![MsgSecretEntry::new(&chat, &sender, "M1", [2; 32], 500, 0)]).await.unwrap();
    keys.put_msg_secrets(vec![MsgSecretEntry::new(&chat, &sender, "M2", [3; 32], 3000, 70)]).await.unwrap();
    let m1 = keys.get_msg_secret_with_ts("5511@s.whatsapp.net", "5511@s.whatsapp.net", "M1").await.unwrap();
    assert_eq!(m1, Some((vec![2; 32], 50)));
    // Rows at or before the cutoff go; 0 means never.
    assert_eq!(keys.delete_expired_msg_secrets(1000).await.unwrap(), 1);
    assert!(keys.get_msg_secret("5511@s.whatsapp.net", "5511@s.whatsapp.net", "M1").await.unwrap().is_none());
    assert_eq!(keys.delete_expired_msg_secrets(3000).await.unwrap(), 1);
    assert!(keys.get_msg_secret("5511@s.whatsapp.net", "5511@s.whatsapp.net", "M0").await.unwrap().is_some());
}

async fn the_device_is_created_saved_and_loaded(f: Fixture) {
    let keys = f.keys("ses_a");
    assert!(!keys.exists().await.unwrap());
    assert!(keys.load().await.unwrap().is_none());
    keys.create().await.unwrap();
    assert!(keys.exists().await.unwrap());
    let mut device = keys.load().await.unwrap().unwrap();
    device.pn = Some("5511999990000@s.whatsapp.net".parse().unwrap());
    device.push_name = "Shop".into();
    keys.save(&device).await.unwrap();
    // Creating again keeps the device there is.
    keys.create().await.unwrap();
    let loaded: Device = keys.load().await.unwrap().unwrap();
    assert_eq!(loaded.pn.map(|j| j.to_string()).as_deref(), Some("5511999990000@s.whatsapp.net"));
    assert_eq!(loaded.push_name, "Shop");
    assert_eq!(loaded.registration_id, device.registration_id);
    assert_eq!(
        loaded.identity_key.public_key.public_key_bytes(),
        device.identity_key.public_key.public_key_bytes()
    );
}

async fn sessions_are_isolated_and_cleared_with_their_session(f: Fixture) {
    let (a, b) = (f.keys("ses_a"), f.keys("ses_b"));
    a.put_session("1@lid", b"a").await.unwrap();
    b.put_session("1@lid", b"b").await.unwrap();
    a.create().await.unwrap();
    assert_eq!(a.get_session("1@lid").await.unwrap(), Some(Bytes::from_static(b"a")));
    assert_eq!(b.get_session("1@lid").await.unwrap(), Some(Bytes::from_static(b"b")));
    assert!(!b.exists().await.unwrap());
    // A logout wipes the device's keys; deleting the session does the same.
    f.store.clear_device_keys(&SessionId::parse("ses_a").unwrap()).await.unwrap();
    assert!(!a.exists().await.unwrap());
    assert_eq!(a.get_session("1@lid").await.unwrap(), None);
    assert!(f.store.delete_session(&SessionId::parse("ses_b").unwrap()).await.unwrap());
    assert_eq!(b.get_session("1@lid").await.unwrap(), None);
}
