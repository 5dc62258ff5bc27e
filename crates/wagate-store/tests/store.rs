//! The store's behaviour, through the `Store` trait (so the PostgreSQL store can run it too).

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report. A test
// crate exports nothing, so `pub` in it only shares helpers between its modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, Utc};
use serde_json::json;
use sqlx::Connection;
use tempfile::TempDir;
use wagate_core::{
    Chat, ConnectorKind, Contact, Direction, EventData, EventType, Jid, MessageContent, MessageStatus,
    NodeState, RemoteCommand, Sender, SessionId, SessionStatus, TextContent, Timestamp,
};
use wagate_store::testing::{on_both_stores, TestDatabase};
use wagate_store::{
    testing, Claim, ClaimRequest, Claimed, Deferral, EventQuery, Events, MessageQuery, MessageRef,
    NewInbound, NewOutbound, NewSession, NodeInfo, OutboundWrites, PgStore, SessionChange, SqliteStore,
    StatusUpdate, Store, StoreError,
};

/// A database for one test, on one backend.
enum Backend {
    Sqlite(TempDir),
    Postgres(TestDatabase),
}

impl Backend {
    /// A new empty database; `None` when the backend is PostgreSQL and no server is configured.
    async fn new(postgres: bool) -> Option<Self> {
        if !postgres {
            return Some(Self::Sqlite(TempDir::new().unwrap()));
        }
        let server = testing::postgres_server()?;
        Some(Self::Postgres(TestDatabase::create(&server).await.unwrap()))
    }

    /// Opens the store (again, after a close).
    async fn open(&self) -> Box<dyn Store> {
        match self {
            Self::Sqlite(dir) => Box::new(
                SqliteStore::open(
                    &format!("sqlite://{}", dir.path().join("test.db").display()),
                    testing::keyring(),
                )
                .await
                .unwrap(),
            ),
            Self::Postgres(db) => Box::new(PgStore::open(&db.url, testing::keyring()).await.unwrap()),
        }
    }
}

on_both_stores!(
    Backend:
    accepting_queues_with_one_event_each_and_honours_idempotency_keys,
    claims_lease_messages_and_a_lapsed_lease_is_claimed_again,
    a_claim_says_when_the_session_can_claim_again,
    messages_scheduled_ahead_wait_and_a_claim_takes_what_fell_due_first,
    linked_sessions_are_found_by_their_numbers_in_one_query,
    one_write_accepts_then_applies_statuses_then_claims,
    one_claim_serves_many_sessions_each_up_to_its_limit,
    a_claim_for_more_sessions_than_one_statement_answers_each_with_its_own,
    receipts_from_many_sessions_find_each_its_own_message,
    statuses_follow_the_state_machine,
    a_message_read_while_it_moves_shows_every_step_up_to_its_status,
    inbound_is_stored_once_per_whatsapp_id_and_survives_reopening,
    events_queue_deliveries_to_the_webhooks_that_want_them,
    claims_take_no_more_than_the_free_slots_oldest_first,
    leases_pass_on_expiry_fence_the_stale_owner_and_tokens_only_grow,
    contacts_and_chats_keep_what_is_known_and_page,
    two_sweeps_at_once_delete_each_old_event_once_and_keep_what_is_needed,
    a_batch_larger_than_a_statement_keeps_its_order_and_its_text,
);

fn node(id: &str, now: Timestamp) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        address: "127.0.0.1:8080".into(),
        version: "test".into(),
        state: NodeState::Active,
        max_sessions: 100,
        started_at: now,
    }
}

async fn leases_pass_on_expiry_fence_the_stale_owner_and_tokens_only_grow(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    let ttl = Duration::seconds(10);
    with_session(store, "s1", now).await; // test-node holds it with token 1
    let wanted = SessionChange { auto_connect: Some(true), ..Default::default() };
    store.update_session(&sid("s1"), wanted, now).await.unwrap();
    let beat = store.heartbeat(&node("test-node", now), now, now + ttl).await.unwrap();
    assert_eq!(beat.leases.iter().map(|l| (l.session_id.as_str(), l.token)).collect::<Vec<_>>(), [("s1", 1)]);
    assert_eq!(beat.state, NodeState::Active);

    // Nobody else takes a live lease; once it runs out, the next node does, with the next token.
    assert!(store.acquire_sessions("other", now, now + ttl, 10, false, None).await.unwrap().is_empty());
    let later = now + Duration::seconds(20);
    let taken = store.acquire_sessions("other", later, later + ttl, 10, false, None).await.unwrap();
    assert_eq!(taken.iter().map(|(s, l)| (s.id.as_str(), l.token)).collect::<Vec<_>>(), [("s1", 2)]);

    // The stale owner can no longer write as the session's owner, nor renew it.
    let stale =
        SessionChange { status: Some(SessionStatus::Connected), lease: Some(1), ..Default::default() };
    assert!(matches!(store.update_session(&sid("s1"), stale, later).await, Err(StoreError::Fenced)));
    store.accept_outbound(vec![outbound("s1", "15557770001", None)], later).await.unwrap();
    let stale_claim = ClaimRequest { session_id: sid("s1"), lease: 1, limit: 10, defer: Vec::new() };
    let claimed = store.claim_outbound(vec![stale_claim], later, later + ttl).await.unwrap();
    assert!(claimed[0].messages.is_empty(), "a stale owner claims nothing");
    let claim = ClaimRequest { session_id: sid("s1"), lease: 2, limit: 10, defer: Vec::new() };
    assert_eq!(store.claim_outbound(vec![claim], later, later + ttl).await.unwrap()[0].messages.len(), 1);
    assert!(store.heartbeat(&node("test-node", now), later, later + ttl).await.unwrap().leases.is_empty());

    // A released lease is taken at once, and its token counts on.
    store.release_sessions("other", &[taken[0].1.clone()]).await.unwrap();
    let third = store.acquire_sessions("third", later, later + ttl, 10, false, None).await.unwrap();
    assert_eq!(third[0].1.token, 3);

    // Commands reach the live owner through its heartbeat.
    assert_eq!(
        store.request_command(&sid("s1"), RemoteCommand::Disconnect, later).await.unwrap().as_deref(),
        Some("third")
    );
    let beat = store.heartbeat(&node("third", later), later, later + ttl).await.unwrap();
    assert_eq!(beat.leases[0].command, Some(RemoteCommand::Disconnect));
    let much_later = later + Duration::seconds(60);
    assert_eq!(
        store.request_command(&sid("s1"), RemoteCommand::Logout, much_later).await.unwrap(),
        None,
        "no live owner"
    );

    // A drain asked for by anyone sticks through the node's own heartbeats.
    assert!(store.set_node_state("third", NodeState::Draining).await.unwrap());
    assert_eq!(
        store.heartbeat(&node("third", later), later, later + ttl).await.unwrap().state,
        NodeState::Draining
    );
    let nodes = store.list_nodes(later - ttl).await.unwrap();
    let shown: Vec<(&str, NodeState, u64)> =
        nodes.iter().map(|n| (n.id.as_str(), n.state, n.sessions)).collect();
    assert_eq!(shown, [("test-node", NodeState::Active, 0), ("third", NodeState::Draining, 1)]);

    let history: Vec<(String, i64)> =
        store.lease_history(&sid("s1")).await.unwrap().into_iter().map(|g| (g.node_id, g.token)).collect();
    assert_eq!(history, [("test-node".into(), 1), ("other".into(), 2), ("third".into(), 3)]);
}

fn sid(id: &str) -> SessionId {
    SessionId::parse(id).unwrap()
}

fn text(body: &str) -> MessageContent {
    MessageContent::Text { text: TextContent { body: body.into() } }
}

/// More rows than one statement binds (500), with text that JSON and SQL quoting must carry
/// intact: every message reads back as sent, and the log has each one's events in order.
async fn a_batch_larger_than_a_statement_keeps_its_order_and_its_text(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    let body =
        |i: usize| format!("#{i} \"double\" 'single' \\back\\ {{\"json\": [1]}}\n\ttab \u{2028} 🎉 ünï");
    let wa_id = |i: usize| format!("WA'{i}\"\\");
    let count = 600;
    let batch = (0..count)
        .map(|i| NewOutbound {
            content: text(&body(i)),
            ..outbound("s1", &format!("1555700{i:04}"), Some(&format!("key-{i}")))
        })
        .collect();
    let accepted = store.accept_outbound(batch, now).await.unwrap();
    let ids: Vec<_> = accepted.iter().map(|a| a.as_ref().unwrap().message.id.clone()).collect();
    assert_eq!(
        claim(store, &[("s1", count as u32)], now, now + Duration::hours(1)).await[0].messages.len(),
        count
    );
    let sent =
        ids.iter().enumerate().map(|(i, id)| status(id, MessageStatus::Sent, Some(&wa_id(i)))).collect();
    assert!(store.apply_statuses(sent, now).await.unwrap().iter().all(|r| r.as_ref().unwrap().len() == 1));
    let delivered = (0..count)
        .map(|i| StatusUpdate {
            message: MessageRef::WaId(sid("s1"), wa_id(i)),
            ..status(&ids[i], MessageStatus::Delivered, None)
        })
        .collect();
    let results = store.apply_statuses(delivered, now).await.unwrap();
    assert!(results.iter().all(|r| r.as_ref().unwrap().len() == 1), "each found by its WhatsApp id");

    for (i, id) in ids.iter().enumerate() {
        let message = store.get_message(id).await.unwrap().unwrap();
        assert_eq!(message.content, text(&body(i)));
        assert_eq!(message.wa_id.as_deref(), Some(wa_id(i).as_str()));
        let history: Vec<MessageStatus> = message.status_history.iter().map(|h| h.status).collect();
        assert_eq!(
            history,
            [MessageStatus::Queued, MessageStatus::Sending, MessageStatus::Sent, MessageStatus::Delivered]
        );
    }
    store.sequence_events(now).await.unwrap();
    let mut events = Vec::new();
    loop {
        let after = events.last().map(|e: &wagate_core::Event| e.id);
        let page = store.list_events(EventQuery { after, limit: 1000, ..Default::default() }).await.unwrap();
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }
    let seqs: Vec<i64> = events.iter().map(|e| e.id.seq()).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>(), "numbered without a gap");
    // Each step of the batch is in the log in the order the messages were accepted.
    let mut steps: BTreeMap<String, Vec<wagate_core::MessageId>> = BTreeMap::new();
    for event in &events {
        if let wagate_core::EventData::MessageStatus(data) = &event.data {
            steps.entry(data.status.as_str().to_owned()).or_default().push(data.message_id.clone());
        }
    }
    for step in ["queued", "sending", "sent", "delivered"] {
        assert_eq!(steps[step], ids, "{step} events in acceptance order");
    }
}

/// A message read while its status moves shows every step it took, up to the status it
/// shows: its history and its row are read from one snapshot, whatever commits in between.
async fn a_message_read_while_it_moves_shows_every_step_up_to_its_status(db: Backend) {
    use MessageStatus::{Delivered, Queued, Read, Sending, Sent};
    const MESSAGES: usize = 30;
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    let batch = (0..MESSAGES).map(|_| outbound("s1", "15557770001", None)).collect();
    let accepted = store.accept_outbound(batch, now).await.unwrap();
    let ids: Vec<_> = accepted.into_iter().map(|a| a.unwrap().message.id).collect();
    claim(store, &[("s1", MESSAGES as u32)], now, now + Duration::seconds(30)).await;

    // The message moving now; MESSAGES once all have moved.
    let moving = AtomicUsize::new(0);
    let moves = async {
        for (n, id) in ids.iter().enumerate() {
            moving.store(n, Ordering::Relaxed);
            store.apply_statuses(vec![status(id, Sent, None)], now).await.unwrap();
            // Receipts that arrive together: two steps in one transaction.
            let receipts = vec![status(id, Delivered, None), status(id, Read, None)];
            store.apply_statuses(receipts, now).await.unwrap();
        }
        moving.store(MESSAGES, Ordering::Relaxed);
    };
    let reads = async {
        let steps = [Queued, Sending, Sent, Delivered, Read];
        let mut reads = 0;
        while let Some(id) = ids.get(moving.load(Ordering::Relaxed)) {
            let message = store.get_message(id).await.unwrap().unwrap();
            let history: Vec<MessageStatus> = message.status_history.iter().map(|h| h.status).collect();
            let shown = steps.iter().position(|s| *s == message.status).unwrap();
            assert_eq!(history, steps[..=shown], "{id}");
            reads += 1;
        }
        reads
    };
    let ((), reads) = tokio::join!(moves, reads);
    assert!(reads >= MESSAGES, "read while moving: {reads}");
}

async fn with_session(store: &dyn Store, id: &str, now: Timestamp) {
    let new = NewSession {
        id: sid(id),
        org_id: wagate_core::OrgId::default_org(),
        connector: ConnectorKind::Sim,
        name: None,
        config: json!({}),
        metadata: json!({}),
    };
    store.create_session(new, now).await.unwrap();
    // Claims need the session's lease (its first grant: token 1).
    let until = now + Duration::hours(1);
    let taken = store.acquire_sessions("test-node", now, until, 1, false, Some(&sid(id))).await.unwrap();
    assert_eq!(taken[0].1.token, 1);
}

fn outbound(session: &str, to: &str, key: Option<&str>) -> NewOutbound {
    NewOutbound {
        session_id: sid(session),
        org_id: wagate_core::OrgId::default_org(),
        to: Jid::parse_recipient(to).unwrap(),
        content: text("hi"),
        idempotency_key: key.map(str::to_owned),
        scheduled_at: None,
        context: None,
        mentions: Vec::new(),
    }
}

fn status(id: &wagate_core::MessageId, to: MessageStatus, wa_id: Option<&str>) -> StatusUpdate {
    StatusUpdate {
        message: MessageRef::Id(id.clone()),
        status: to,
        reason: None,
        wa_id: wa_id.map(str::to_owned),
        retry_at: None,
    }
}

/// `sent` for each message of a claim, under WhatsApp ids `{prefix}0`, `{prefix}1`, ….
fn sent(claim: &Claim, prefix: &str) -> Vec<StatusUpdate> {
    let ids = claim.messages.iter().map(|c| &c.message.id);
    ids.enumerate().map(|(i, id)| status(id, MessageStatus::Sent, Some(&format!("{prefix}{i}")))).collect()
}

async fn claim(
    store: &dyn Store,
    requests: &[(&str, u32)],
    now: Timestamp,
    lease_until: Timestamp,
) -> Vec<Claim> {
    let requests = requests
        .iter()
        .map(|(s, limit)| ClaimRequest { session_id: sid(s), lease: 1, limit: *limit, defer: Vec::new() })
        .collect();
    store.claim_outbound(requests, now, lease_until).await.unwrap()
}

async fn accepting_queues_with_one_event_each_and_honours_idempotency_keys(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    let batch = vec![
        outbound("s1", "15557770001", Some("k1")),
        outbound("s1", "15557770002", Some("k1")),
        outbound("ghost", "15557770003", None),
        outbound("s1", "15557770004", None),
        // The sender took the session to be another organization's: it is not found.
        NewOutbound {
            org_id: wagate_core::OrgId::parse("elsewhere").unwrap(),
            ..outbound("s1", "15557770005", None)
        },
    ];
    let results = store.accept_outbound(batch, now).await.unwrap();
    let first = results[0].as_ref().unwrap();
    assert!(first.created && first.message.status == MessageStatus::Queued && first.event.is_some());
    let repeat = results[1].as_ref().unwrap();
    assert!(!repeat.created && repeat.event.is_none());
    assert_eq!(repeat.message.id, first.message.id, "a key repeated within one batch");
    assert!(matches!(results[2], Err(StoreError::NotFound("session"))));
    assert!(results[3].as_ref().unwrap().created);
    assert!(matches!(results[4], Err(StoreError::NotFound("session"))));

    let again = store.accept_outbound(vec![outbound("s1", "15557770009", Some("k1"))], now).await.unwrap();
    assert_eq!(again[0].as_ref().unwrap().message.id, first.message.id, "a key repeated later");

    // PostgreSQL numbers events after commit; SQLite already has.
    store.sequence_events(now).await.unwrap();
    let events = store.list_events(EventQuery { limit: 100, ..Default::default() }).await.unwrap();
    let queued: Vec<_> = events.iter().filter(|e| e.kind() == EventType::MessageStatus).collect();
    assert_eq!(queued.len(), 2);
    let seqs: Vec<i64> = events.iter().map(|e| e.id.seq()).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
}

async fn claims_lease_messages_and_a_lapsed_lease_is_claimed_again(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    let batch = (0..3).map(|i| outbound("s1", &format!("1555777000{i}"), None)).collect();
    store.accept_outbound(batch, now).await.unwrap();

    let lease = now + Duration::seconds(30);
    let Claim { messages: claimed, events, .. } = claim(store, &[("s1", 2)], now, lease).await.remove(0);
    assert_eq!(claimed.len(), 2);
    assert_eq!(events.len(), 2);
    assert!(claimed.iter().all(|c| c.message.status == MessageStatus::Sending));
    let rest = claim(store, &[("s1", 10)], now, lease).await.remove(0).messages;
    assert_eq!(rest.len(), 1, "claimed messages are not claimed twice while leased");
    assert_eq!(claim(store, &[("s1", 10)], now, lease).await[0].messages.len(), 0);

    // The first one is sent; the others' lease lapses (their node died) and they come back.
    store
        .apply_statuses(vec![status(&claimed[0].message.id, MessageStatus::Sent, Some("WA1"))], now)
        .await
        .unwrap();
    let later = lease + Duration::seconds(1);
    let Claim { messages: again, events, next_due } =
        claim(store, &[("s1", 10)], later, later + Duration::seconds(30)).await.remove(0);
    assert_eq!(again.len(), 2);
    assert!(events.is_empty(), "already sending: no new event");
    assert_eq!(next_due, None, "nothing else waits");
}

async fn a_claim_says_when_the_session_can_claim_again(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    let at = |t: Timestamp| t.timestamp_millis();
    let mut batch: Vec<NewOutbound> =
        (0..3).map(|i| outbound("s1", &format!("1555777000{i}"), None)).collect();
    let scheduled = now + Duration::hours(1);
    batch.push(NewOutbound { scheduled_at: Some(scheduled), ..outbound("s1", "15557770009", None) });
    store.accept_outbound(batch, now).await.unwrap();

    let lease = now + Duration::seconds(30);
    let full = claim(store, &[("s1", 2)], now, lease).await.remove(0);
    assert_eq!(full.messages.len(), 2);
    assert_eq!(full.next_due.map(at), Some(at(now)), "a claim that took its limit: more may be due now");
    let last = claim(store, &[("s1", 10)], now, lease).await.remove(0);
    assert_eq!(last.messages.len(), 1);
    assert_eq!(last.next_due.map(at), Some(at(lease)), "the first two come back when their lease ends");

    let sent = full
        .messages
        .iter()
        .chain(&last.messages)
        .enumerate()
        .map(|(i, c)| status(&c.message.id, MessageStatus::Sent, Some(&format!("WA{i}"))));
    store.apply_statuses(sent.collect(), now).await.unwrap();
    let idle = claim(store, &[("s1", 10), ("s2", 10)], now, lease).await;
    assert!(idle[0].messages.is_empty());
    assert_eq!(idle[0].next_due.map(at), Some(at(scheduled)), "then the scheduled one");
    assert_eq!(idle[1].next_due, None, "a session with nothing waiting");
}

async fn messages_scheduled_ahead_wait_and_a_claim_takes_what_fell_due_first(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    let at = |t: Timestamp| t.timestamp_millis();
    let hours = |h: i64| now + Duration::hours(h);
    // Accepted first, so their ids sort before the direct sends': due in 3, 2 and 1 hours.
    let scheduled: Vec<NewOutbound> = (1..=3)
        .rev()
        .map(|h| NewOutbound {
            scheduled_at: Some(hours(h)),
            ..outbound("s1", &format!("1555777010{h}"), None)
        })
        .collect();
    let ahead = store.accept_outbound(scheduled, now).await.unwrap();
    let ahead: Vec<_> = ahead.into_iter().map(|a| a.unwrap().message.id).collect();
    let direct: Vec<NewOutbound> = (0..3).map(|i| outbound("s1", &format!("1555777000{i}"), None)).collect();
    let direct = store.accept_outbound(direct, now).await.unwrap();
    let direct: Vec<_> = direct.into_iter().map(|a| a.unwrap().message.id).collect();
    let ids = |claim: &Claim| claim.messages.iter().map(|c| c.message.id.clone()).collect::<Vec<_>>();

    let lease = now + Duration::seconds(30);
    let first = claim(store, &[("s1", 1)], now, lease).await.remove(0);
    assert_eq!(ids(&first), [direct[0].clone()], "what is due, past the messages scheduled ahead");
    // Its send fails and is tried again in ten minutes.
    let retry_at = now + Duration::minutes(10);
    let retry = StatusUpdate { retry_at: Some(retry_at), ..status(&direct[0], MessageStatus::Queued, None) };
    store.apply_statuses(vec![retry], now).await.unwrap();

    let rest = claim(store, &[("s1", 10)], now, lease).await.remove(0);
    assert_eq!(ids(&rest), direct[1..], "neither the retry nor the scheduled ones are due");
    assert_eq!(rest.next_due.map(at), Some(at(retry_at)), "the retry is due first");
    store.apply_statuses(sent(&rest, "WA"), now).await.unwrap();

    // Two hours on: the retry and two scheduled messages are due, in the order they fell due
    // (not their ids' order), and the last scheduled one is next.
    let later = hours(2);
    let due = claim(store, &[("s1", 10)], later, later + Duration::seconds(30)).await.remove(0);
    assert_eq!(ids(&due), [direct[0].clone(), ahead[2].clone(), ahead[1].clone()]);
    assert_eq!(due.next_due.map(at), Some(at(hours(3))), "the last scheduled one");
    store.apply_statuses(sent(&due, "WA-later"), later).await.unwrap();
    let last = claim(store, &[("s1", 10)], hours(4), hours(5)).await.remove(0);
    assert_eq!(ids(&last), [ahead[0].clone()]);
    assert_eq!(last.next_due, None, "nothing else waits");
}

async fn linked_sessions_are_found_by_their_numbers_in_one_query(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    // b and c were linked to the same number (c later); d is of another connector; e has a
    // number but was never linked.
    let linked =
        [("b", ConnectorKind::Sim, "15550002222", true), ("c", ConnectorKind::Sim, "15550002222", true)];
    let others =
        [("d", ConnectorKind::Web, "15550003333", true), ("e", ConnectorKind::Sim, "15550004444", false)];
    for (id, connector, phone, credentials) in linked.into_iter().chain(others) {
        let new = NewSession {
            id: sid(id),
            org_id: wagate_core::OrgId::default_org(),
            connector,
            name: None,
            config: json!({}),
            metadata: json!({}),
        };
        store.create_session(new, now).await.unwrap();
        let change = SessionChange {
            phone: Some(phone.into()),
            credentials: if credentials {
                wagate_store::Credentials::Set(json!({ "phone": phone }))
            } else {
                wagate_store::Credentials::Keep
            },
            ..Default::default()
        };
        store.update_session(&sid(id), change, now).await.unwrap();
    }
    let numbers = ["15550002222", "15550003333", "15550004444", "15550009999"];
    let found = store.find_linked_sessions(ConnectorKind::Sim, &numbers).await.unwrap();
    let found: Vec<(&str, Option<&str>)> =
        found.iter().map(|s| (s.id.as_str(), s.phone.as_deref())).collect();
    assert_eq!(found, [("b", Some("15550002222"))], "the lowest id of a number linked twice, and only that");
    assert!(store.find_linked_sessions(ConnectorKind::Sim, &[]).await.unwrap().is_empty());
}

async fn one_write_accepts_then_applies_statuses_then_claims(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    store.accept_outbound(vec![outbound("s1", "15557770001", None)], now).await.unwrap();
    let first = claim(store, &[("s1", 10)], now, now + Duration::seconds(30)).await.remove(0).messages;
    let first = first[0].message.id.clone();
    store.sequence_events(now).await.unwrap();
    let after = store.list_events(EventQuery { limit: 100, ..Default::default() }).await.unwrap().len();

    // The first message is sent and its receipt arrives, a second is accepted, and the session
    // asks for its due messages: all in one transaction.
    let writes = OutboundWrites {
        accepts: vec![outbound("s1", "15557770002", None)],
        statuses: vec![
            status(&first, MessageStatus::Sent, Some("WA1")),
            StatusUpdate {
                message: MessageRef::WaId(sid("s1"), "WA1".into()),
                ..status(&first, MessageStatus::Delivered, None)
            },
        ],
        claims: vec![ClaimRequest { session_id: sid("s1"), lease: 1, limit: 10, defer: Vec::new() }],
    };
    let written = store.write_outbound(writes, now, now + Duration::seconds(30)).await.unwrap();
    let second = written.accepted[0].as_ref().unwrap().message.id.clone();
    assert_eq!(written.statuses.len(), 2);
    assert_eq!(written.statuses[0].as_ref().unwrap().len(), 1, "sent");
    assert_eq!(
        written.statuses[1].as_ref().unwrap().len(),
        1,
        "the receipt finds the WhatsApp id just learnt"
    );
    let Claim { messages: claimed, events: claim_events, .. } = &written.claimed[0];
    let claimed: Vec<_> = claimed.iter().map(|c| &c.message.id).collect();
    assert_eq!(claimed, vec![&second], "the claim sees the message accepted before it");
    assert_eq!(claim_events.len(), 1);

    store.sequence_events(now).await.unwrap();
    let events = store.list_events(EventQuery { limit: 100, ..Default::default() }).await.unwrap();
    let steps: Vec<_> = events[after..]
        .iter()
        .map(|e| match &e.data {
            EventData::MessageStatus(data) => (data.message_id.clone(), data.status),
            other => panic!("not a status change: {other:?}"),
        })
        .collect();
    let expected = [
        (second.clone(), MessageStatus::Queued),
        (first.clone(), MessageStatus::Sent),
        (first, MessageStatus::Delivered),
        (second, MessageStatus::Sending),
    ];
    assert_eq!(steps, expected, "in the order of the write: accepts, status changes, claims");
}

async fn one_claim_serves_many_sessions_each_up_to_its_limit(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    for session in ["a", "b", "c"] {
        with_session(store, session, now).await;
    }
    let batch = ["a", "a", "a", "b", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, s)| outbound(s, &format!("155577700{i:02}"), None))
        .collect();
    store.accept_outbound(batch, now).await.unwrap();
    let lease = now + Duration::seconds(30);
    let answers = claim(store, &[("a", 2), ("b", 5), ("a", 2), ("ghost", 3)], now, lease).await;
    let counts: Vec<(usize, usize)> = answers.iter().map(|a| (a.messages.len(), a.events.len())).collect();
    assert_eq!(counts, [(2, 2), (2, 2), (0, 0), (0, 0)], "a session asking twice is answered once");
    for answer in &answers[..2] {
        assert!(answer.messages.windows(2).all(|w| w[0].message.id < w[1].message.id), "oldest first");
    }
    assert!(answers[0].messages.iter().all(|c| c.message.session_id == sid("a")));
    let rest: Vec<Claimed> = claim(store, &[("a", 10), ("c", 10)], now, lease)
        .await
        .into_iter()
        .flat_map(|c| c.messages)
        .collect();
    assert_eq!(rest.len(), 2, "the third of a and the one of c");
}

async fn a_claim_for_more_sessions_than_one_statement_answers_each_with_its_own(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    // More sessions than one claim statement covers (100), each with three messages queued.
    let sessions: Vec<String> = (0..130).map(|i| format!("s{i:03}")).collect();
    for session in &sessions {
        with_session(store, session, now).await;
        let batch = (0..3).map(|n| outbound(session, &format!("155577701{n:02}"), None)).collect();
        store.accept_outbound(batch, now).await.unwrap();
    }
    // Limits 1, 2, 3, 1, …; every seventh session asks with a lease it no longer holds.
    let requests: Vec<ClaimRequest> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| ClaimRequest {
            session_id: sid(s),
            lease: if i % 7 == 3 { 0 } else { 1 },
            limit: (i % 3) as u32 + 1,
            defer: Vec::new(),
        })
        .collect();
    let answers = store.claim_outbound(requests, now, now + Duration::seconds(30)).await.unwrap();
    assert_eq!(answers.len(), sessions.len());
    for (i, (Claim { messages: claimed, events, .. }, session)) in answers.iter().zip(&sessions).enumerate() {
        let wanted = if i % 7 == 3 { 0 } else { i % 3 + 1 };
        assert_eq!((claimed.len(), events.len()), (wanted, wanted), "{session}");
        assert!(claimed.iter().all(|c| c.message.session_id == sid(session)), "{session}");
        let to: Vec<&str> = claimed.iter().map(|c| c.message.to.as_str()).collect();
        let oldest: Vec<String> = (0..wanted).map(|n| format!("155577701{n:02}@s.whatsapp.net")).collect();
        assert_eq!(to, oldest, "{session}: its oldest first");
    }
}

async fn receipts_from_many_sessions_find_each_its_own_message(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    // Many sessions, each with a message sent under the same WhatsApp id: a receipt finds the
    // message of its own session only.
    let sessions: Vec<String> = (0..130).map(|i| format!("s{i:03}")).collect();
    let mut ids = Vec::new();
    for session in &sessions {
        with_session(store, session, now).await;
        let accepted =
            store.accept_outbound(vec![outbound(session, "15557770001", None)], now).await.unwrap();
        ids.push(accepted[0].as_ref().unwrap().message.id.clone());
    }
    let requests: Vec<(&str, u32)> = sessions.iter().map(|s| (s.as_str(), 1)).collect();
    claim(store, &requests, now, now + Duration::seconds(30)).await;
    let sent = ids.iter().map(|id| status(id, MessageStatus::Sent, Some("WA1"))).collect();
    store.apply_statuses(sent, now).await.unwrap();

    // One batch: delivered for even sessions, read for odd ones, and a receipt for an id the
    // session never had.
    let receipt = |session: &str, wa_id: &str, to| StatusUpdate {
        message: MessageRef::WaId(sid(session), wa_id.into()),
        status: to,
        reason: None,
        wa_id: None,
        retry_at: None,
    };
    let mut receipts: Vec<StatusUpdate> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            receipt(s, "WA1", if i % 2 == 0 { MessageStatus::Delivered } else { MessageStatus::Read })
        })
        .collect();
    receipts.push(receipt("s000", "WA2", MessageStatus::Read));
    let results = store.apply_statuses(receipts, now).await.unwrap();
    let changed: Vec<usize> = results.iter().map(|r| r.as_ref().unwrap().len()).collect();
    assert_eq!(changed[..sessions.len()], vec![1; sessions.len()][..], "one change per receipt");
    assert_eq!(changed[sessions.len()], 0, "an unknown WhatsApp id changes nothing");
    for (i, id) in ids.iter().enumerate() {
        let message = store.get_message(id).await.unwrap().unwrap();
        let wanted = if i % 2 == 0 { MessageStatus::Delivered } else { MessageStatus::Read };
        assert_eq!(message.status, wanted, "{}", sessions[i]);
    }
}

async fn statuses_follow_the_state_machine(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    let accepted = store.accept_outbound(vec![outbound("s1", "15557770001", None)], now).await.unwrap();
    let id = accepted[0].as_ref().unwrap().message.id.clone();

    let illegal = store.apply_statuses(vec![status(&id, MessageStatus::Sent, None)], now).await.unwrap();
    assert!(matches!(illegal[0], Err(StoreError::IllegalTransition(_))), "queued cannot jump to sent");

    claim(store, &[("s1", 1)], now, now + Duration::seconds(30)).await;
    let by_wa_id = |s| StatusUpdate {
        message: MessageRef::WaId(sid("s1"), "WA1".into()),
        status: s,
        reason: None,
        wa_id: None,
        retry_at: None,
    };
    let results = store
        .apply_statuses(
            vec![
                status(&id, MessageStatus::Sent, Some("WA1")),
                by_wa_id(MessageStatus::Read),
                by_wa_id(MessageStatus::Delivered),
                StatusUpdate {
                    message: MessageRef::WaId(sid("s1"), "unknown".into()),
                    ..by_wa_id(MessageStatus::Read)
                },
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().len(), 1);
    assert_eq!(results[1].as_ref().unwrap().len(), 1, "read may come without delivered");
    assert!(results[2].as_ref().unwrap().is_empty(), "a late delivered receipt changes nothing");
    assert!(results[3].as_ref().unwrap().is_empty(), "a receipt for an unknown message is skipped");

    let message = store.get_message(&id).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Read);
    let history: Vec<MessageStatus> = message.status_history.iter().map(|h| h.status).collect();
    assert_eq!(
        history,
        [MessageStatus::Queued, MessageStatus::Sending, MessageStatus::Sent, MessageStatus::Read]
    );
    let after = claim(store, &[("s1", 10)], now, now + Duration::seconds(30)).await.remove(0);
    assert_eq!(after.next_due, None, "sent messages leave the outbox");
}

async fn inbound_is_stored_once_per_whatsapp_id_and_survives_reopening(db: Backend) {
    let now = Utc::now();
    {
        let store = &*db.open().await;
        with_session(store, "s1", now).await;
        let inbound = |wa_id: &str| NewInbound {
            session_id: sid("s1"),
            wa_id: wa_id.into(),
            chat: "15557770001@s.whatsapp.net".into(),
            from: "15557770001@s.whatsapp.net".into(),
            to: "15550001111@s.whatsapp.net".into(),
            content: text("hello"),
            at: now,
            reply_to: None,
            mentions: Vec::new(),
            sender: (wa_id == "B")
                .then(|| Sender { lid: Some("99887766@lid".into()), push_name: Some("Ana".into()) }),
        };
        let events = store.store_inbound(vec![inbound("A"), inbound("A"), inbound("B")], now).await.unwrap();
        assert_eq!(events.len(), 2);
        assert!(store.store_inbound(vec![inbound("B")], now).await.unwrap().is_empty());
        store.close().await;
    }
    let store = &*db.open().await;
    let messages = store
        .list_messages(MessageQuery {
            session_id: sid("s1"),
            chat: None,
            direction: Some(Direction::In),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    let wa_ids: Vec<_> = messages.iter().map(|m| m.wa_id.clone().unwrap()).collect();
    assert_eq!(wa_ids, ["B", "A"], "newest first");
    assert_eq!(messages[0].sender.as_ref().and_then(|s| s.push_name.as_deref()), Some("Ana"));
    assert_eq!(messages[1].sender, None);
    let received = EventQuery { types: vec![EventType::MessageReceived], limit: 10, ..Default::default() };
    store.sequence_events(now).await.unwrap();
    assert_eq!(store.list_events(received).await.unwrap().len(), 2);
    // What the messages taught: the chat, and its author as a contact.
    let contacts = store.list_contacts(&sid("s1"), None, 10).await.unwrap();
    assert_eq!(contacts.len(), 1);
    let ana = &contacts[0];
    assert_eq!(
        (ana.jid.as_str(), ana.phone.as_deref(), ana.lid.as_deref(), ana.push_name.as_deref()),
        ("15557770001@s.whatsapp.net", Some("15557770001"), Some("99887766@lid"), Some("Ana"))
    );
    let chats = store.list_chats(&sid("s1"), 0, 10).await.unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!((chats[0].jid.as_str(), chats[0].is_group), ("15557770001@s.whatsapp.net", false));
    assert_eq!(chats[0].last_message_at.map(|t| t.timestamp_millis()), Some(now.timestamp_millis()));
}

async fn contacts_and_chats_keep_what_is_known_and_page(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    with_session(store, "s1", now).await;
    with_session(store, "s2", now).await;
    let contact = |jid: &str, name: Option<&str>, push: Option<&str>| Contact {
        jid: jid.into(),
        phone: jid.strip_suffix("@s.whatsapp.net").map(str::to_owned),
        lid: None,
        name: name.map(str::to_owned),
        push_name: push.map(str::to_owned),
        updated_at: now,
    };
    let first =
        (0..1200).map(|i| contact(&format!("1555{i:07}@s.whatsapp.net"), Some("Old"), None)).collect();
    store.save_contacts(&sid("s1"), first).await.unwrap();
    // A later sync that lacks a field keeps it; one that has it replaces it; a JID twice in one
    // batch is one contact.
    store
        .save_contacts(
            &sid("s1"),
            vec![
                contact("15550000000@s.whatsapp.net", None, Some("Zed")),
                contact("15550000001@s.whatsapp.net", Some("New"), None),
                contact("15550000001@s.whatsapp.net", None, Some("Pushy")),
            ],
        )
        .await
        .unwrap();
    let page = store.list_contacts(&sid("s1"), None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|c| (c.name.as_deref(), c.push_name.as_deref())).collect::<Vec<_>>(),
        [(Some("Old"), Some("Zed")), (Some("New"), Some("Pushy"))]
    );
    let rest = store.list_contacts(&sid("s1"), Some(&page[1].jid), 5000).await.unwrap();
    assert_eq!(rest.len(), 1198);
    assert!(store.list_contacts(&sid("s2"), None, 10).await.unwrap().is_empty(), "per session");

    let chat = |jid: &str, name: Option<&str>, at: Option<i64>| Chat {
        jid: jid.into(),
        name: name.map(str::to_owned),
        is_group: jid.ends_with("@g.us"),
        last_message_at: at.map(|s| now + Duration::seconds(s)),
        updated_at: now,
    };
    store
        .save_chats(
            &sid("s1"),
            vec![
                chat("1@s.whatsapp.net", None, Some(10)),
                chat("2-3@g.us", Some("Team"), Some(20)),
                chat("4@lid", None, None),
            ],
        )
        .await
        .unwrap();
    // The last message time only moves forward; a name is kept when the update has none.
    store
        .save_chats(
            &sid("s1"),
            vec![chat("2-3@g.us", None, Some(5)), chat("1@s.whatsapp.net", Some("Bo"), Some(30))],
        )
        .await
        .unwrap();
    let chats = store.list_chats(&sid("s1"), 0, 10).await.unwrap();
    let shown: Vec<_> = chats.iter().map(|c| (c.jid.as_str(), c.name.as_deref(), c.is_group)).collect();
    assert_eq!(
        shown,
        [("1@s.whatsapp.net", Some("Bo"), false), ("2-3@g.us", Some("Team"), true), ("4@lid", None, false)],
        "most recent first, never-active last"
    );
    assert_eq!(
        chats[1].last_message_at.map(|t| t.timestamp()),
        Some((now + Duration::seconds(20)).timestamp())
    );
    assert_eq!(store.list_chats(&sid("s1"), 2, 10).await.unwrap().len(), 1);
}

async fn webhook(
    store: &dyn Store,
    events: &[&str],
    session: Option<&str>,
    now: Timestamp,
) -> wagate_core::Webhook {
    let new = wagate_store::NewWebhook {
        org_id: wagate_core::OrgId::default_org(),
        url: "https://example.com/hook".into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        session_id: session.map(sid),
        description: None,
        secret: "whsec_c2VjcmV0".into(),
    };
    store.create_webhook(new, now).await.unwrap()
}

fn slots(max: u32) -> wagate_store::DeliverySlots {
    wagate_store::DeliverySlots { max_in_flight: max, in_flight: Default::default() }
}

async fn events_queue_deliveries_to_the_webhooks_that_want_them(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    let all = webhook(store, &["*"], None, now).await;
    let messages = webhook(store, &["message.*"], None, now).await;
    let only_b = webhook(store, &["session.status"], Some("b"), now).await;
    with_session(store, "a", now).await;
    with_session(store, "b", now).await;
    store.accept_outbound(vec![outbound("a", "15550001111", None)], now).await.unwrap();
    // Deliveries are queued as events are numbered: after commit on PostgreSQL.
    store.sequence_events(now).await.unwrap();

    let claimed = store.claim_deliveries(slots(10), now, now + Duration::seconds(30)).await.unwrap();
    let types = |id: &wagate_core::WebhookId| -> Vec<(EventType, Option<String>)> {
        let (_, deliveries) = claimed.iter().find(|(w, _)| &w.id == id).unwrap();
        deliveries
            .iter()
            .map(|d| (d.event.kind(), d.event.session_id.as_ref().map(ToString::to_string)))
            .collect()
    };
    assert_eq!(types(&all.id).len(), 3);
    assert_eq!(types(&messages.id), [(EventType::MessageStatus, Some("a".into()))]);
    assert_eq!(types(&only_b.id), [(EventType::SessionStatus, Some("b".into()))]);

    // Leased: nothing more is due until the lease runs out, then all of it again.
    assert!(store.claim_deliveries(slots(10), now, now).await.unwrap().iter().all(|(_, d)| d.is_empty()));
    let later = now + Duration::seconds(31);
    let again = store.claim_deliveries(slots(10), later, later + Duration::seconds(30)).await.unwrap();
    assert_eq!(again.iter().map(|(_, d)| d.len()).sum::<usize>(), 5);
}

async fn claims_take_no_more_than_the_free_slots_oldest_first(db: Backend) {
    let store = &*db.open().await;
    let now = Utc::now();
    let hook = webhook(store, &["*"], None, now).await;
    for id in ["a", "b", "c", "d", "e"] {
        with_session(store, id, now).await;
    }
    store.sequence_events(now).await.unwrap();
    let mut held = slots(4);
    held.in_flight.insert(hook.id.clone(), 1);
    let claimed = store.claim_deliveries(held, now, now + Duration::seconds(30)).await.unwrap();
    let sessions: Vec<Option<String>> =
        claimed[0].1.iter().map(|d| d.event.session_id.as_ref().map(ToString::to_string)).collect();
    assert_eq!(sessions, [Some("a".into()), Some("b".into()), Some("c".into())]);

    // A recorded success is final; a retry is due when it says; a release is due at once.
    let record = |d: &wagate_store::ClaimedDelivery, outcome| wagate_store::AttemptRecord {
        delivery: d.id,
        webhook_id: hook.id.clone(),
        attempt: wagate_core::Attempt {
            at: now,
            status_code: Some(200),
            latency_ms: 3,
            response_body: None,
            error: None,
        },
        outcome,
    };
    let retry_at = now + Duration::seconds(5);
    let records = vec![
        record(&claimed[0].1[0], wagate_store::AttemptOutcome::Delivered),
        record(&claimed[0].1[1], wagate_store::AttemptOutcome::RetryAt(retry_at)),
    ];
    assert!(store.record_attempts(records, now, Duration::days(5)).await.unwrap().is_empty());
    store.release_deliveries(vec![claimed[0].1[2].id], now).await.unwrap();
    let next = store.claim_deliveries(slots(10), now, now + Duration::seconds(30)).await.unwrap();
    let sessions: Vec<Option<String>> =
        next[0].1.iter().map(|d| d.event.session_id.as_ref().map(ToString::to_string)).collect();
    assert_eq!(sessions, [Some("c".into()), Some("d".into()), Some("e".into())]);
    let at_retry = store.claim_deliveries(slots(10), retry_at, retry_at).await.unwrap();
    assert_eq!(at_retry[0].1.len(), 1);
    assert_eq!(at_retry[0].1[0].attempts, 1);
    assert_eq!(at_retry[0].1[0].event.session_id.as_ref().map(|s| s.as_str()), Some("b"));

    let query = wagate_store::DeliveryQuery {
        webhook_id: hook.id.clone(),
        status: Some(wagate_core::DeliveryStatus::Delivered),
        before: None,
        limit: 10,
    };
    let delivered = store.list_deliveries(query).await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].attempts.len(), 1);
    assert_eq!(delivered[0].attempts[0].status_code, Some(200));
}

/// A folder holding the migrations of `backend` (`sqlite` or `postgres`) numbered below
/// `before`: run on a new database, they leave it as an earlier release did.
fn migrations_before(backend: &str, before: &str) -> TempDir {
    let folder = TempDir::new().unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    for file in std::fs::read_dir(&migrations).unwrap() {
        let name = file.unwrap().file_name().into_string().unwrap();
        if name.as_str() < before {
            std::fs::copy(migrations.join(&name), folder.path().join(&name)).unwrap();
        }
    }
    folder
}

#[tokio::test]
async fn upgrading_keeps_the_event_log_and_never_reuses_an_event_id() {
    use sqlx::{ConnectOptions, Executor};
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    // A database as the first release left it: only the first migration, three events, the last deleted.
    let first = migrations_before("sqlite", "0002");
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut conn = options.create_if_missing(true).connect().await.unwrap();
    sqlx::migrate::Migrator::new(first.path()).await.unwrap().run(&mut conn).await.unwrap();
    let data = r#"{"status":"created","reason":null,"phone":null,"jid":null}"#;
    conn.execute(
        format!(
            "INSERT INTO events (type, session_id, created_at, data) VALUES \
             ('session.status', 'old', 1, '{data}'), ('session.status', 'old', 2, '{data}'), \
             ('session.status', 'old', 3, '{data}'); DELETE FROM events WHERE seq = 3;"
        )
        .as_str(),
    )
    .await
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&url, testing::keyring()).await.unwrap();
    with_session(&store, "new", Utc::now()).await;
    let events = store.list_events(EventQuery { limit: 10, ..Default::default() }).await.unwrap();
    let ids: Vec<(i64, Option<&str>)> =
        events.iter().map(|e| (e.id.seq(), e.session_id.as_ref().map(|s| s.as_str()))).collect();
    assert_eq!(ids, [(1, Some("old")), (2, Some("old")), (4, Some("new"))]);
}

/// PostgreSQL numbers events after they commit. An upgrade finds the events still waiting for
/// a number and numbers them after those it had numbered; an event a node of an earlier
/// version numbered meanwhile (it does not know the list of waiting events) keeps its number.
#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn upgrading_postgres_numbers_the_events_waiting_once_each() {
    use sqlx::{Executor, PgConnection};
    let server = testing::postgres_server()
        .unwrap_or_else(|| panic!("set {} to upgrade a PostgreSQL database", testing::POSTGRES_URL_VAR));
    let db = TestDatabase::create(&server).await.unwrap();
    // The database as the release before the list of waiting events left it: one event
    // numbered, one committed and waiting.
    let before = migrations_before("postgres", "0012");
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::migrate::Migrator::new(before.path()).await.unwrap().run(&mut conn).await.unwrap();
    let data = r#"{"status":"created","reason":null,"phone":null,"jid":null}"#;
    let insert = |session: &str| {
        format!(
            "INSERT INTO events (type, session_id, created_at, data, org_id) \
             VALUES ('session.status', '{session}', 1, '{data}', 'default')"
        )
    };
    conn.execute(
        format!("{}; UPDATE events SET seq = 1; UPDATE event_counter SET last = 1", insert("numbered"))
            .as_str(),
    )
    .await
    .unwrap();
    conn.execute(insert("waiting").as_str()).await.unwrap();
    drop(conn);

    let store = PgStore::open(&db.url, testing::keyring()).await.unwrap();
    // A node of the earlier version, still running, appends an event and numbers it itself.
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    conn.execute(
        format!(
            "{}; UPDATE events SET seq = 2 WHERE session_id = 'older'; UPDATE event_counter SET last = 2",
            insert("older")
        )
        .as_str(),
    )
    .await
    .unwrap();
    assert_eq!(store.sequence_events(Utc::now()).await.unwrap().count(), 1);
    with_session(&store, "new", Utc::now()).await;
    assert_eq!(store.sequence_events(Utc::now()).await.unwrap().count(), 1);
    let events = store.list_events(EventQuery { limit: 10, ..Default::default() }).await.unwrap();
    let ids: Vec<(i64, &str)> =
        events.iter().map(|e| (e.id.seq(), e.session_id.as_ref().unwrap().as_str())).collect();
    assert_eq!(ids, [(1, "numbered"), (2, "older"), (3, "waiting"), (4, "new")]);
    let waiting: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events_pending").fetch_one(&mut conn).await.unwrap();
    assert_eq!(waiting, 0);
}

/// A paced session's claim defers the messages to a recipient over its cap, then reads the
/// queue. A message to that recipient accepted in between (each PostgreSQL statement sees what
/// was committed when it began) waits all the same: it is not claimed, and it is due when the
/// cap frees.
#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn a_message_accepted_while_a_claim_defers_its_recipient_waits_too() {
    use sqlx::{Executor, PgConnection};
    let backend = Backend::new(true)
        .await
        .unwrap_or_else(|| panic!("set {} to run on PostgreSQL", testing::POSTGRES_URL_VAR));
    let Backend::Postgres(db) = &backend else { unreachable!("a PostgreSQL database") };
    let store = &*backend.open().await;
    let now = Utc::now();
    let at = |t: Timestamp| t.timestamp_millis();
    with_session(store, "s1", now).await;
    let bob = "15550002222";
    store.accept_outbound(vec![outbound("s1", bob, None)], now).await.unwrap();
    let first = claim(store, &[("s1", 1)], now, now + Duration::seconds(30)).await.remove(0);
    let to_bob = first.messages[0].message.to.clone();
    let sent = status(&first.messages[0].message.id, MessageStatus::Sent, Some("WA1"));
    store.apply_statuses(vec![sent], now).await.unwrap();

    // The next claim finds bob over his cap. It runs its deferral, then waits for the
    // session's lease, which another connection holds for now.
    let mut holder = PgConnection::connect(&db.url).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder.execute("SELECT 1 FROM session_leases WHERE session_id = 's1' FOR UPDATE").await.unwrap();
    let until = now + Duration::minutes(1);
    let request = ClaimRequest {
        session_id: sid("s1"),
        lease: 1,
        limit: 1,
        defer: vec![Deferral { recipient: Some(to_bob), until }],
    };
    let claiming = store.claim_outbound(vec![request], now, now + Duration::seconds(30));
    let meanwhile = async {
        testing::wait_for_a_lock_wait(store).await;
        let second = store.accept_outbound(vec![outbound("s1", bob, None)], now).await.unwrap();
        holder.execute("ROLLBACK").await.unwrap();
        second[0].as_ref().unwrap().message.id.clone()
    };
    let (claimed, second) = tokio::join!(claiming, meanwhile);
    let claimed = claimed.unwrap().remove(0);
    assert!(claimed.messages.is_empty(), "bob's second message was claimed over his cap");
    assert_eq!(claimed.next_due.map(at), Some(at(until)), "due when the cap frees");
    let waiting = store.get_message(&second).await.unwrap().unwrap();
    assert_eq!(waiting.status, MessageStatus::Queued);
    assert_eq!(waiting.next_attempt_at.map(at), Some(at(until)));
}

/// Each table's columns, and its indexes (other than those behind a primary key or UNIQUE
/// constraint) with their columns.
type Schema = BTreeMap<String, (BTreeSet<String>, BTreeMap<String, Vec<String>>)>;

/// The SQLite and PostgreSQL migrations build the same schema: the same tables, columns and
/// indexes. The known differences: PostgreSQL's `event_counter` (gapless event numbers), its
/// events' `pk`, the table of events not yet numbered and the unique index of their numbers
/// (it numbers events after commit; SQLite's `seq` is the row's own key), and the `rowid`
/// columns it spells out where SQLite has one implicitly.
#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn both_backends_build_the_same_schema() {
    let server = testing::postgres_server()
        .unwrap_or_else(|| panic!("set {} to compare with PostgreSQL", testing::POSTGRES_URL_VAR));
    let dir = TempDir::new().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("test.db").display());
    SqliteStore::open(&sqlite_url, testing::keyring()).await.unwrap().close().await;
    let pg = TestDatabase::create(&server).await.unwrap();
    PgStore::open(&pg.url, testing::keyring()).await.unwrap().close().await;

    let sqlite = sqlite_schema(&sqlite_url).await;
    let mut postgres = postgres_schema(&pg.url).await;
    assert!(postgres.remove("event_counter").is_some(), "{postgres:?}");
    assert!(postgres.remove("events_pending").is_some(), "{postgres:?}");
    let (event_columns, event_indexes) = postgres.get_mut("events").unwrap();
    assert!(event_columns.remove("pk"));
    assert_eq!(event_indexes.remove("events_seq_key"), Some(vec!["seq".to_owned()]));
    for (columns, _) in postgres.values_mut() {
        columns.remove("rowid");
    }
    assert!(sqlite.len() > 10, "{sqlite:?}");
    assert_eq!(sqlite, postgres);
}

async fn sqlite_schema(url: &str) -> Schema {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        // Indexes SQLite makes for constraints have no SQL of their own.
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut indexes = BTreeMap::new();
        for name in names {
            let on: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                .bind(&name)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            indexes.insert(name, on);
        }
        schema.insert(table, (columns.into_iter().collect(), indexes));
    }
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.relname::text, a.attname::text FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) \
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum \
             WHERE n.nspname = 'public' AND t.relname = $1 \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
             ORDER BY i.relname, k.position",
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut indexes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (index, column) in rows {
            indexes.entry(index).or_default().push(column);
        }
        schema.insert(table, (columns.into_iter().collect(), indexes));
    }
    schema
}

#[tokio::test]
async fn upgrading_moves_everything_into_the_default_organization() {
    use sqlx::{ConnectOptions, Executor};
    use wagate_store::prelude::*;
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    // A database as the release before organizations left it, with a session, a template and an event.
    let before = migrations_before("sqlite", "0013");
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut conn = options.create_if_missing(true).connect().await.unwrap();
    sqlx::migrate::Migrator::new(before.path()).await.unwrap().run(&mut conn).await.unwrap();
    let data = r#"{"status":"created","reason":null,"phone":null,"jid":null}"#;
    conn.execute(
        format!(
            "INSERT INTO sessions (id, connector, status, created_at, updated_at) VALUES ('old', 'sim', 'created', 1, 1); \
             INSERT INTO templates (name, content, created_at, updated_at) \
             VALUES ('hi', '{{\"type\":\"text\",\"text\":{{\"body\":\"hi\"}}}}', 1, 1); \
             INSERT INTO events (type, session_id, created_at, data) VALUES ('session.status', 'old', 1, '{data}');"
        )
        .as_str(),
    )
    .await
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&url, testing::keyring()).await.unwrap();
    let default = wagate_core::OrgId::default_org();
    assert_eq!(store.get_session(&sid("old")).await.unwrap().unwrap().org_id, default);
    assert_eq!(store.list_sessions(Some(&default)).await.unwrap().len(), 1);
    assert!(store.get_template(&default, "hi").await.unwrap().is_some());
    let query = EventQuery { org_id: Some(default.clone()), limit: 10, ..Default::default() };
    assert_eq!(store.list_events(query).await.unwrap().len(), 1);
    assert_eq!(store.list_orgs().await.unwrap().iter().map(|o| o.id.clone()).collect::<Vec<_>>(), [default]);
}

async fn all(store: &dyn Store) -> Vec<wagate_core::Event> {
    store.list_events(EventQuery { limit: 1000, ..Default::default() }).await.unwrap()
}

/// Sweeps the events older than `cutoff`, four at a time; answers how many it deleted.
async fn sweep_events(store: &dyn Store, cutoff: Timestamp) -> u64 {
    let (mut deleted, mut after) = (0, None);
    loop {
        let swept = store.expire_events(cutoff, after, 4).await.unwrap();
        deleted += swept.deleted;
        match swept.resume_after {
            Some(next) => after = Some(next),
            None => return deleted,
        }
    }
}

/// Two nodes sweeping the same database at once, in small batches: every old event is deleted
/// once, recent ones stay, and queued messages stay however old.
async fn two_sweeps_at_once_delete_each_old_event_once_and_keep_what_is_needed(db: Backend) {
    let (first, second) = (db.open().await, db.open().await);
    let now = Utc::now();
    let old = now - Duration::hours(2);
    with_session(&*first, "s1", old).await;
    for n in 0..6 {
        let batch = (0..5).map(|i| outbound("s1", &format!("155577710{n}{i}"), None)).collect();
        first.accept_outbound(batch, old).await.unwrap();
    }
    first.sequence_events(old).await.unwrap();
    let old_events = all(&*first).await;
    let recent = first.accept_outbound(vec![outbound("s1", "15557772000", None)], now).await.unwrap();
    first.sequence_events(now).await.unwrap();
    let recent_events: Vec<_> = all(&*first).await.into_iter().skip(old_events.len()).collect();
    assert_eq!(recent_events.len(), 1);

    let cutoff = now - Duration::hours(1);
    let (a, b) = tokio::join!(sweep_events(&*first, cutoff), sweep_events(&*second, cutoff));
    assert_eq!(a + b, old_events.len() as u64, "each old event deleted once ({a} + {b})");
    let left: Vec<_> = all(&*second).await.iter().map(|e| e.id).collect();
    assert_eq!(left, recent_events.iter().map(|e| e.id).collect::<Vec<_>>());
    assert_eq!(first.events_expired_through().await.unwrap(), old_events.last().map(|e| e.id));

    // The old messages are still queued: nothing of them goes, whatever their age.
    let swept = first.expire_messages(cutoff, None, 100).await.unwrap();
    assert_eq!((swept.deleted, swept.resume_after), (0, None));
    let message = &recent[0].as_ref().unwrap().message;
    assert!(first.get_message(&message.id).await.unwrap().is_some());
    let kept = first
        .list_messages(MessageQuery {
            session_id: SessionId::parse("s1").unwrap(),
            chat: None,
            direction: None,
            before: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(kept.len(), 31);
}
