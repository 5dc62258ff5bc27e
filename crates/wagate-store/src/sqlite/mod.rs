//! The SQLite store: one file in WAL mode, one writer connection (SQLite has one writer
//! anyway; a single connection avoids lock contention) and a small pool of readers.

mod events;
mod messages;
mod sessions;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use wagate_core::{Event, EventType, Message, MessageId, Session, SessionId, Timestamp};

use crate::{
    Accepted, Claimed, EventQuery, MessageQuery, NewInbound, NewOutbound, NewSession, SessionChange,
    StatusUpdate, Store, StoreError, StoreResult,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`) and
    /// runs pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL survives process crashes; only a power loss can take the
            // last commits. That is the usual trade for a server's SQLite file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        MIGRATOR.run(&writer).await?;
        let readers =
            SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, readers })
    }

    /// Closes both pools, waiting for connections in use.
    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }
}

pub(crate) fn millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> StoreResult<Timestamp> {
    chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_session(&self, new: NewSession, now: Timestamp) -> StoreResult<(Session, Event)> {
        sessions::create(&self.writer, new, now).await
    }

    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        sessions::get(&self.readers, id).await
    }

    async fn list_sessions(&self) -> StoreResult<Vec<Session>> {
        sessions::list(&self.readers).await
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool> {
        sessions::delete(&self.writer, id).await
    }

    async fn update_session(
        &self,
        id: &SessionId,
        change: SessionChange,
        now: Timestamp,
    ) -> StoreResult<(Session, Option<Event>)> {
        sessions::update(&self.writer, id, change, now).await
    }

    async fn append_event(
        &self,
        kind: EventType,
        session_id: &SessionId,
        data: serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<Event> {
        let mut tx = self.writer.begin().await?;
        let event = events::insert(&mut tx, kind, session_id, data, now).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn list_events(&self, query: EventQuery) -> StoreResult<Vec<Event>> {
        events::list(&self.readers, query).await
    }

    async fn accept_outbound(
        &self,
        batch: Vec<NewOutbound>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Accepted>>> {
        messages::accept(&self.writer, batch, now).await
    }

    async fn claim_outbound(
        &self,
        session_id: &SessionId,
        limit: u32,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<(Vec<Claimed>, Vec<Event>)> {
        messages::claim(&self.writer, session_id, limit, now, lease_until).await
    }

    async fn next_outbound_due(&self, session_id: &SessionId) -> StoreResult<Option<Timestamp>> {
        messages::next_due(&self.readers, session_id).await
    }

    async fn apply_statuses(
        &self,
        updates: Vec<StatusUpdate>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Option<Event>>>> {
        messages::apply_statuses(&self.writer, updates, now).await
    }

    async fn store_inbound(&self, batch: Vec<NewInbound>, now: Timestamp) -> StoreResult<Vec<Event>> {
        messages::store_inbound(&self.writer, batch, now).await
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        messages::get(&self.readers, id).await
    }

    async fn list_messages(&self, query: MessageQuery) -> StoreResult<Vec<Message>> {
        messages::list(&self.readers, query).await
    }
}
