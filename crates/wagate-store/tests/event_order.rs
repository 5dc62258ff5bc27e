//! The event log's ordering guarantee, which every reader of the log relies on (the live feed,
//! `GET /v1/events?after=`, SSE and WebSocket resume, webhook fan-out): **a reader that has
//! seen event n never later finds an event numbered below n.** So reading "after the last id
//! seen", again and again, sees every event exactly once, in order, whatever writers do at the
//! same time: many at once, on several nodes, one of them stalling inside its transaction.
//!
//! PostgreSQL writers take no lock to append: each node's sequencer numbers committed events
//! (`Events::sequence_events`), and readers see numbered events only. SQLite numbers events as
//! they are appended (one writer at a time).

// Helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tempfile::TempDir;
use wagate_core::event::SessionStatusData;
use wagate_core::{ConnectorKind, EventData, EventId, SessionId, SessionStatus};
use wagate_store::testing::{on_both_stores, TestDatabase};
use wagate_store::{testing, EventQuery, NewSession, PgStore, SqliteStore, Store};

/// One node's store: the PostgreSQL one for a cluster, or SQLite's (one node only).
#[derive(Clone)]
enum Node {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Node {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    async fn append(&self, session: &SessionId, stall: Option<Duration>) {
        self.append_status(session, SessionStatus::Connecting, stall).await;
    }

    async fn append_status(&self, session: &SessionId, status: SessionStatus, stall: Option<Duration>) {
        let data = EventData::SessionStatus(SessionStatusData {
            status,
            reason: None,
            phone: None,
            jid: None,
            pairing_code: None,
            expires_at: None,
            node_id: None,
        });
        let now = Utc::now();
        match (self, stall) {
            (_, None) => self.store().append_event(session, data, now).await.map(drop),
            (Self::Sqlite(store), Some(stall)) => {
                store.append_event_stalled(session, data, now, stall).await.map(drop)
            }
            (Self::Postgres(store), Some(stall)) => {
                store.append_event_stalled(session, data, now, stall).await.map(drop)
            }
        }
        .expect("append");
    }
}

/// The nodes of one test: two sharing one PostgreSQL database, or one SQLite node.
struct Nodes {
    nodes: Vec<Node>,
    _dir: TempDir,
    _database: Option<TestDatabase>,
}

impl Nodes {
    async fn new(postgres: bool) -> Option<Self> {
        let dir = TempDir::new().unwrap();
        if !postgres {
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            let node = Node::Sqlite(Arc::new(SqliteStore::open(&url, testing::keyring()).await.unwrap()));
            return Some(Self { nodes: vec![node], _dir: dir, _database: None });
        }
        let database = TestDatabase::create(&testing::postgres_server()?).await.unwrap();
        let mut nodes = Vec::new();
        for _ in 0..2 {
            nodes.push(Node::Postgres(Arc::new(
                PgStore::open(&database.url, testing::keyring()).await.unwrap(),
            )));
        }
        Some(Self { nodes, _dir: dir, _database: Some(database) })
    }
}

/// Creates the session "s" every event of a test is about.
async fn create_session(store: &dyn Store) -> SessionId {
    let session = SessionId::parse("s").unwrap();
    let new = NewSession {
        id: session.clone(),
        org_id: wagate_core::OrgId::default_org(),
        connector: ConnectorKind::Sim,
        name: None,
        config: json!({}),
        metadata: json!({}),
    };
    store.create_session(new, Utc::now()).await.unwrap();
    session
}

on_both_stores!(Nodes: readers_after_the_last_id_seen_miss_nothing_under_concurrent_and_stalled_writers);

const WRITERS_PER_NODE: usize = 4;
const EVENTS_PER_WRITER: usize = 40;

async fn readers_after_the_last_id_seen_miss_nothing_under_concurrent_and_stalled_writers(nodes: Nodes) {
    let first = nodes.nodes[0].store();
    let session = create_session(&*first).await;

    // A reader polls "after the last id seen" while everyone writes.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (nodes.nodes[0].store(), Arc::clone(&done));
        tokio::spawn(async move {
            let mut seen: Vec<EventId> = Vec::new();
            loop {
                // Read `done` before the read: a read that started after every writer finished
                // and found nothing new means everything was seen.
                let finished = done.load(Ordering::Acquire);
                let query = EventQuery { after: seen.last().cloned(), limit: 1_000, ..EventQuery::default() };
                let page = store.list_events(query).await.unwrap();
                if page.is_empty() && finished {
                    return seen;
                }
                seen.extend(page.into_iter().map(|event| event.id));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // Every node numbers what is committed, over and over, as the live feed does.
    let sequencers: Vec<_> = nodes
        .nodes
        .iter()
        .map(|node| {
            let (store, done) = (node.store(), Arc::clone(&done));
            tokio::spawn(async move {
                let mut turns = Vec::new();
                while !done.load(Ordering::Acquire) {
                    turns.extend(store.sequence_events(Utc::now()).await.unwrap().turns);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                turns
            })
        })
        .collect();
    let mut writers = Vec::new();
    for node in &nodes.nodes {
        for _ in 0..WRITERS_PER_NODE {
            let (node, session) = (node.clone(), session.clone());
            writers.push(tokio::spawn(async move {
                for _ in 0..EVENTS_PER_WRITER {
                    node.append(&session, None).await;
                }
            }));
        }
        // One writer on each node stalls inside its transaction for a while, twice.
        let (node, session) = (node.clone(), session.clone());
        writers.push(tokio::spawn(async move {
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                node.append(&session, Some(Duration::from_millis(300))).await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // Everything is committed: one more turn numbers what the sequencers have not yet.
    let mut turns = first.sequence_events(Utc::now()).await.unwrap().turns;
    done.store(true, Ordering::Release);
    for sequencer in sequencers {
        turns.extend(sequencer.await.unwrap());
    }
    let seen = reader.await.unwrap();

    let everything = first
        .list_events(EventQuery { limit: 100_000, ..EventQuery::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.id)
        .collect::<Vec<_>>();
    let written = 1 + nodes.nodes.len() * (WRITERS_PER_NODE * EVENTS_PER_WRITER + 2);
    assert_eq!(everything.len(), written, "every append is in the log (with the session's creation)");
    assert_eq!(seen.len(), everything.len(), "the reader saw every event exactly once");
    assert_eq!(seen, everything, "in the log's order");
    assert!(seen.windows(2).all(|pair| pair[0].seq() < pair[1].seq()), "ids only grow");

    // Each event was numbered by exactly one turn, on one node (what per-node metrics count).
    let mut numbered: Vec<EventId> = turns
        .iter()
        .flat_map(|turn| (turn.start().seq()..=turn.end().seq()).map(EventId::from_seq))
        .collect();
    numbered.sort_unstable();
    if first.numbers_at_append() {
        assert!(numbered.is_empty(), "numbered as appended, the sequencer has nothing to do");
    } else {
        assert_eq!(numbered, everything, "every event in exactly one turn");
    }
}

/// A writer stalled inside its transaction holds back nobody: events other writers commit
/// meanwhile are numbered and read at once, and the stalled one is numbered after them when it
/// commits. (SQLite has one writer at a time, so there the others would wait for it.)
#[tokio::test]
#[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
async fn a_stalled_writer_delays_only_its_own_events() {
    let nodes = Nodes::new(true)
        .await
        .unwrap_or_else(|| panic!("set {} to run against PostgreSQL", testing::POSTGRES_URL_VAR));
    let (stalled, other) = (nodes.nodes[0].clone(), nodes.nodes[1].clone());
    let session = create_session(&*other.store()).await;

    let stall = {
        let (node, session) = (stalled.clone(), session.clone());
        tokio::spawn(async move {
            node.append_status(&session, SessionStatus::Disconnected, Some(Duration::from_secs(3))).await;
        })
    };
    // The stalled event is appended (its pk taken) before the other writer's.
    tokio::time::sleep(Duration::from_millis(200)).await;
    other.append_status(&session, SessionStatus::Connected, None).await;
    other.store().sequence_events(Utc::now()).await.unwrap();
    let read = |node: Node| async move {
        let events =
            node.store().list_events(EventQuery { limit: 100, ..EventQuery::default() }).await.unwrap();
        events
            .into_iter()
            .map(|event| match event.data {
                EventData::SessionStatus(status) => (event.id.seq(), status.status),
                other => panic!("unexpected {other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert!(!stall.is_finished(), "the writer is still inside its transaction");
    assert_eq!(
        read(stalled.clone()).await,
        [(1, SessionStatus::Created), (2, SessionStatus::Connected)],
        "the event committed meanwhile is readable while the other writer stalls"
    );

    stall.await.unwrap();
    stalled.store().sequence_events(Utc::now()).await.unwrap();
    assert_eq!(
        read(other).await,
        [(1, SessionStatus::Created), (2, SessionStatus::Connected), (3, SessionStatus::Disconnected)],
        "the stalled event comes after, once committed"
    );
}
