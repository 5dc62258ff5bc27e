//! The SQLite store: one file in WAL mode, one writer connection (SQLite has one writer
//! anyway; a single connection avoids lock contention) and a small pool of readers.

mod campaigns;
mod events;
mod media;
mod messages;
mod sessions;
mod templates;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::Mutex;
use wagate_core::{
    Campaign, CampaignAction, CampaignId, CampaignState, Delivery, DeliveryId, Event, EventId, EventType,
    Hook, HookId, Media, MediaId, Message, MessageContent, MessageId, Session, SessionId, Template,
    Timestamp, Webhook, WebhookId,
};

use crate::{
    Accepted, AttemptRecord, ClaimRequest, Claimed, ClaimedDelivery, DeliveryQuery, DeliverySlots,
    EventBound, EventQuery, MessageQuery, NewCampaign, NewHook, NewInbound, NewOutbound, NewSession,
    NewWebhook, NotReady, RecipientQuery, Replayed, SessionChange, Stats, StatusUpdate, Store, StoreError,
    StoreResult, TemplateChange, WebhookChange,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The one connection that writes. Held directly, not through a pool: a pool hands the
    /// connection back through the runtime after every transaction, which under load costs
    /// more than the transaction itself.
    writer: Arc<Mutex<SqliteConnection>>,
    readers: SqlitePool,
    /// How to open a connection of its own (the readiness check opens one each time).
    options: SqliteConnectOptions,
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
        let mut writer = options.connect().await?;
        MIGRATOR.run(&mut writer).await?;
        let options = options.read_only(true).create_if_missing(false);
        let readers = SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await?;
        Ok(Self { writer: Arc::new(Mutex::new(writer)), readers, options })
    }

    /// Writes a consistent copy of the database at `url` to `path` (a new file), while it may
    /// be in use. Opens it read-only and runs no migrations: a backup taken before an upgrade
    /// with the new binary is the old schema.
    pub async fn backup(url: &str, path: &std::path::Path) -> StoreResult<()> {
        let path = path.to_str().ok_or_else(|| StoreError::Corrupt("backup path is not UTF-8".into()))?;
        let options =
            SqliteConnectOptions::from_str(url)?.read_only(true).busy_timeout(Duration::from_secs(10));
        let mut conn = options.connect().await?;
        sqlx::query("VACUUM INTO ?").bind(path).execute(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    /// Closes both pools, waiting for connections in use.
    pub async fn close(&self) {
        self.readers.close().await;
        // The writer closes when the last clone of the store is dropped; checkpoint now so
        // the WAL is folded into the database file on a clean stop.
        let mut writer = self.writer.lock().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *writer).await {
            tracing::warn!(error = %e, "could not checkpoint the database on close");
        }
    }
}

/// Appends `(?, ?, …)` binding each value: the list of an `IN`.
pub(crate) fn push_list<'a>(sql: &mut QueryBuilder<'a, Sqlite>, values: impl IntoIterator<Item = &'a str>) {
    sql.push("(");
    let mut list = sql.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    sql.push(")");
}

pub(crate) fn millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> StoreResult<Timestamp> {
    chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value}"))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> Result<(), NotReady> {
        let mut conn = self.options.connect().await.map_err(|e| NotReady::Database(e.to_string()))?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1 ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .map_err(|e| NotReady::Migrations(e.to_string()))?;
        let expected: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        let _ = conn.close().await;
        if applied == expected {
            Ok(())
        } else {
            Err(NotReady::Migrations(format!("applied {applied:?}, this version needs {expected:?}")))
        }
    }

    async fn create_session(&self, new: NewSession, now: Timestamp) -> StoreResult<(Session, Event)> {
        sessions::create(&mut *self.writer.lock().await, new, now).await
    }

    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        sessions::get(&self.readers, id).await
    }

    async fn list_sessions(&self) -> StoreResult<Vec<Session>> {
        sessions::list(&self.readers).await
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool> {
        sessions::delete(&mut *self.writer.lock().await, id).await
    }

    async fn update_session(
        &self,
        id: &SessionId,
        change: SessionChange,
        now: Timestamp,
    ) -> StoreResult<(Session, Option<Event>)> {
        sessions::update(&mut *self.writer.lock().await, id, change, now).await
    }

    async fn append_event(
        &self,
        kind: EventType,
        session_id: &SessionId,
        data: serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<Event> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin().await?;
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
        messages::accept(&mut *self.writer.lock().await, batch, now).await
    }

    async fn claim_outbound(
        &self,
        requests: Vec<ClaimRequest>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<(Vec<Claimed>, Vec<Event>)>> {
        messages::claim(&mut *self.writer.lock().await, requests, now, lease_until).await
    }

    async fn next_outbound_due(&self, session_id: &SessionId) -> StoreResult<Option<Timestamp>> {
        messages::next_due(&self.readers, session_id).await
    }

    async fn apply_statuses(
        &self,
        updates: Vec<StatusUpdate>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Vec<Event>>>> {
        messages::apply_statuses(&mut *self.writer.lock().await, updates, now).await
    }

    async fn create_media(&self, media: &Media) -> StoreResult<()> {
        media::insert(&mut *self.writer.lock().await, media).await
    }

    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>> {
        media::get(&self.readers, id).await
    }

    async fn expire_media(&self, before: Timestamp, limit: u32) -> StoreResult<Vec<MediaId>> {
        media::expire(&mut *self.writer.lock().await, before, limit).await
    }

    async fn sent_since(
        &self,
        session_id: &SessionId,
        since: Timestamp,
    ) -> StoreResult<Vec<(String, Timestamp)>> {
        messages::sent_since(&self.readers, session_id, since).await
    }

    async fn create_campaign(&self, new: NewCampaign, now: Timestamp) -> StoreResult<(Campaign, Event)> {
        campaigns::create(&mut *self.writer.lock().await, new, now).await
    }

    async fn get_campaign(&self, session: &SessionId, id: &CampaignId) -> StoreResult<Option<Campaign>> {
        campaigns::get(&self.readers, session, id).await
    }

    async fn list_campaigns(&self, session: &SessionId) -> StoreResult<Vec<Campaign>> {
        campaigns::list(&self.readers, session).await
    }

    async fn act_on_campaign(
        &self,
        session: &SessionId,
        id: &CampaignId,
        action: CampaignAction,
        now: Timestamp,
    ) -> StoreResult<Result<(Campaign, Event), CampaignState>> {
        campaigns::act(&mut *self.writer.lock().await, session, id, action, now).await
    }

    async fn list_campaign_recipients(&self, query: RecipientQuery) -> StoreResult<Vec<Message>> {
        campaigns::recipients(&self.readers, query).await
    }

    async fn store_inbound(&self, batch: Vec<NewInbound>, now: Timestamp) -> StoreResult<Vec<Event>> {
        messages::store_inbound(&mut *self.writer.lock().await, batch, now).await
    }

    async fn cancel_scheduled(&self, id: &MessageId, now: Timestamp) -> StoreResult<(Message, Event)> {
        messages::cancel_scheduled(&mut *self.writer.lock().await, id, now).await
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        messages::get(&self.readers, id).await
    }

    async fn list_messages(&self, query: MessageQuery) -> StoreResult<Vec<Message>> {
        messages::list(&self.readers, query).await
    }

    async fn stats(&self) -> StoreResult<Stats> {
        let sessions: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT connector, status, COUNT(*) FROM sessions GROUP BY connector, status")
                .fetch_all(&self.readers)
                .await?;
        let (outbox, outbox_oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(m.created_at) FROM outbox o JOIN messages m ON m.id = o.message_id \
             WHERE o.held = 0",
        )
        .fetch_one(&self.readers)
        .await?;
        let (pending, pending_oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.readers)
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Stats {
            sessions: sessions.into_iter().map(|(c, s, n)| (c, s, count(n))).collect(),
            outbox: count(outbox),
            outbox_oldest: outbox_oldest.map(from_millis).transpose()?,
            deliveries_pending: count(pending),
            deliveries_oldest: pending_oldest.map(from_millis).transpose()?,
        })
    }

    async fn create_template(
        &self,
        name: String,
        language: Option<String>,
        content: MessageContent,
        now: Timestamp,
    ) -> StoreResult<Template> {
        templates::create(&mut *self.writer.lock().await, name, language, content, now).await
    }

    async fn get_template(&self, name: &str) -> StoreResult<Option<Template>> {
        templates::get(&self.readers, name).await
    }

    async fn list_templates(&self) -> StoreResult<Vec<Template>> {
        templates::list(&self.readers).await
    }

    async fn update_template(
        &self,
        name: &str,
        change: TemplateChange,
        now: Timestamp,
    ) -> StoreResult<Option<Template>> {
        templates::update(&mut *self.writer.lock().await, name, change, now).await
    }

    async fn delete_template(&self, name: &str) -> StoreResult<bool> {
        templates::delete(&mut *self.writer.lock().await, name).await
    }

    async fn create_hook(&self, new: NewHook, now: Timestamp) -> StoreResult<Hook> {
        templates::create_hook(&mut *self.writer.lock().await, new, now).await
    }

    async fn list_hooks(&self, session: &SessionId) -> StoreResult<Vec<Hook>> {
        templates::list_hooks(&self.readers, session).await
    }

    async fn delete_hook(&self, session: &SessionId, id: &HookId) -> StoreResult<bool> {
        templates::delete_hook(&mut *self.writer.lock().await, session, id).await
    }

    async fn use_hook(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Hook>> {
        templates::use_hook(&mut *self.writer.lock().await, token_hash, now).await
    }

    async fn last_event_id(&self) -> StoreResult<Option<EventId>> {
        events::last_id(&self.readers).await
    }

    async fn create_webhook(&self, new: NewWebhook, now: Timestamp) -> StoreResult<Webhook> {
        webhooks::create(&mut *self.writer.lock().await, new, now).await
    }

    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>> {
        webhooks::get(&self.readers, id).await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        webhooks::list(&self.readers).await
    }

    async fn update_webhook(
        &self,
        id: &WebhookId,
        change: WebhookChange,
        now: Timestamp,
    ) -> StoreResult<Option<Webhook>> {
        webhooks::update(&mut *self.writer.lock().await, id, change, now).await
    }

    async fn rotate_webhook_secret(
        &self,
        id: &WebhookId,
        secret: String,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<Webhook>> {
        webhooks::rotate_secret(&mut *self.writer.lock().await, id, secret, previous_until, now).await
    }

    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool> {
        webhooks::delete(&mut *self.writer.lock().await, id).await
    }

    async fn claim_deliveries(
        &self,
        slots: DeliverySlots,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<(Webhook, Vec<ClaimedDelivery>)>> {
        webhooks::claim(&mut *self.writer.lock().await, slots, now, lease_until).await
    }

    async fn release_deliveries(&self, ids: Vec<DeliveryId>, now: Timestamp) -> StoreResult<()> {
        webhooks::release(&mut *self.writer.lock().await, ids, now).await
    }

    async fn record_attempts(
        &self,
        records: Vec<AttemptRecord>,
        now: Timestamp,
        disable_after: chrono::Duration,
    ) -> StoreResult<Vec<Event>> {
        webhooks::record_attempts(&mut *self.writer.lock().await, records, now, disable_after).await
    }

    async fn list_deliveries(&self, query: DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        webhooks::list_deliveries(&self.readers, query).await
    }

    async fn get_delivery(&self, webhook: &WebhookId, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        webhooks::get_delivery(&self.readers, webhook, id).await
    }

    async fn retry_delivery(
        &self,
        webhook: &WebhookId,
        id: DeliveryId,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>> {
        if !webhooks::retry(&mut *self.writer.lock().await, webhook, id, now).await? {
            return Ok(None);
        }
        webhooks::get_delivery(&self.readers, webhook, id).await
    }

    async fn replay_events(
        &self,
        webhook: &WebhookId,
        from: EventBound,
        until: Option<EventBound>,
        now: Timestamp,
    ) -> StoreResult<Replayed> {
        webhooks::replay(&mut *self.writer.lock().await, webhook, from, until, now).await
    }
}
