//! The SQLite store: one file in WAL mode, one writer connection (SQLite has one writer
//! anyway; a single connection avoids lock contention) and a small pool of readers.

// The SQL is shared with PostgreSQL: each backend compiles the same modules against its own
// `Db`, `Backend` and dialect.
#[path = "../sql/audit.rs"]
mod audit;
#[path = "../sql/campaigns.rs"]
mod campaigns;
#[path = "../sql/cluster.rs"]
mod cluster;
#[path = "../sql/contacts.rs"]
mod contacts;
#[path = "../sql/device_keys.rs"]
mod device_keys;
#[path = "../sql/events.rs"]
mod events;
#[path = "../sql/keys.rs"]
mod keys;
#[path = "../sql/media.rs"]
mod media;
#[path = "../sql/message_rows.rs"]
mod message_rows;
#[path = "../sql/messages.rs"]
mod messages;
#[path = "../sql/orgs.rs"]
mod orgs;
#[path = "../sql/outbound.rs"]
mod outbound;
#[path = "../sql/retention.rs"]
mod retention;
#[path = "../sql/secrets.rs"]
mod secrets;
#[path = "../sql/sessions.rs"]
mod sessions;
#[path = "../sql/stats.rs"]
mod stats;
#[path = "../sql/templates.rs"]
mod templates;
#[path = "../sql/tx.rs"]
mod tx;
#[path = "../sql/values.rs"]
mod values;
#[path = "../sql/webhooks.rs"]
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, MutexGuard};

use crate::keyring::Keyring;
use crate::{NotReady, StoreError, StoreResult};
use tx::begin;
use values::{corrupt, from_json, from_millis, millis, push_list, push_numbers};

type Db = Sqlite;
type DbConn = SqliteConnection;
type DbPool = SqlitePool;
type DbRow = SqliteRow;
type Backend = SqliteStore;

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
    /// Seals and opens the secrets kept here.
    keyring: Keyring,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`), runs
    /// pending migrations, checks that `keyring` opens the secrets kept there and seals those
    /// kept in plaintext.
    pub async fn open(url: &str, keyring: Keyring) -> StoreResult<Self> {
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
        let store = Self { writer: Arc::new(Mutex::new(writer)), readers, options, keyring };
        secrets::on_open(&store).await?;
        Ok(store)
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

    /// Whether the database answers and its migrations are the ones this version needs.
    async fn check_ready(&self) -> Result<(), NotReady> {
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

    /// The connection that writes, one transaction at a time.
    async fn writer(&self) -> StoreResult<MutexGuard<'_, SqliteConnection>> {
        Ok(self.writer.lock().await)
    }

    fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// One process has the database to itself: there is nobody to signal.
    async fn send_signals(&self, _messages: Vec<String>) -> StoreResult<()> {
        Ok(())
    }

    async fn signals(
        &self,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<wagate_core::Signal>>> {
        Ok(None)
    }
}

/// What differs in SQLite's SQL.
mod dialect {
    use super::{DbConn, DbPool, StoreResult};

    /// Numbers for `count` events being appended; answers the last. SQLite has one writer at a
    /// time, so numbers taken inside a transaction are in commit order. AUTOINCREMENT keeps
    /// the highest number ever used, deleted or not.
    pub(super) async fn number_at_append(conn: &mut DbConn, count: i64) -> StoreResult<Option<i64>> {
        let used: i64 =
            sqlx::query_scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)")
                .fetch_one(&mut *conn)
                .await?;
        Ok(Some(used + count))
    }

    /// Numbers committed events that have none: there are none, every event was numbered as
    /// it was appended.
    pub(super) async fn number_committed(_conn: &mut DbConn, _limit: i64) -> StoreResult<Option<(i64, i64)>> {
        Ok(None)
    }

    /// After a sequencer turn: there are none.
    pub(super) async fn tidy_numbered(_pool: &DbPool, _first: i64, _last: i64) -> StoreResult<()> {
        Ok(())
    }

    /// Whether events wait to be numbered, and how many and since when: none ever does (`seq`
    /// is the row's key).
    pub(super) const ANY_UNNUMBERED: &str = "SELECT EXISTS (SELECT 1 FROM events WHERE seq IS NULL)";
    pub(super) const UNNUMBERED: &str = "SELECT COUNT(*), MIN(created_at) FROM events WHERE seq IS NULL";

    /// The elements of a JSON array (as `value`), as a table.
    pub(super) fn json_elements(array: &str) -> String {
        format!("json_each({array})")
    }

    /// The elements of a JSON array of strings (as `value`, text), as a table: the SQL before
    /// and after the array (`values::json_text_elements`).
    pub(super) const JSON_TEXT_ELEMENTS: [&str; 2] = ["json_each(", ")"];

    /// A value among a subquery's rows, the SQL before and after the subquery.
    pub(super) const AMONG: [&str; 2] = [" IN (", ")"];

    /// The rows of a JSON array of arrays as the table `r`: a row's array as `r.value`, its place
    /// in the array (from 0) as `r.n`.
    pub(super) fn json_rows(array: &str) -> String {
        format!("(SELECT value, key AS n FROM json_each({array})) AS r")
    }

    /// The rows `subquery` gives for each row of the JSON rows `array` (of `rows` rows), as one
    /// table: `subquery` is given the SQL of its row's JSON array. SQLite has no `LATERAL`: a
    /// `UNION ALL` of one subquery per row, whose text varies with `rows`. Each text is prepared
    /// once per connection and kept (a few milliseconds for 100 rows; a run of it takes half a
    /// millisecond).
    pub(super) fn for_each_json_row(array: &str, rows: usize, subquery: impl Fn(&str) -> String) -> String {
        (0..rows)
            .map(|i| format!("SELECT * FROM ({}) AS per_row{i}", subquery(&format!("({array} -> '$[{i}]')"))))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    /// A condition that `key` is among the `element`s of the JSON rows `array`: none is needed.
    /// SQLite drives such a join from the JSON rows and looks the table up by its key; with the
    /// condition spelled out it drove the join from the table and read the JSON rows once per
    /// row.
    pub(super) fn among_json_rows(_key: &str, _element: &str, _array: &str) -> String {
        "TRUE".into()
    }

    /// What makes a read transaction see one snapshot of the database: nothing (in WAL mode a
    /// read transaction sees the database as of its first read until it ends).
    pub(super) const SNAPSHOT: Option<&str> = None;

    /// The column events are appended in order of (every event is numbered as it is appended).
    pub(super) const APPEND_ORDER: &str = "seq";

    /// Every event is numbered as it is appended: the sequencer never has anything to do.
    pub(super) const NUMBERED_AT_APPEND: bool = true;

    /// One writer connection: write transactions run one at a time.
    pub(super) const ONE_WRITER: bool = true;

    /// Row locks for a claim: SQLite has one writer, so none are needed.
    pub(super) const SKIP_LOCKED: &str = "";

    /// Row locks for rows a transaction read to change: none needed with one writer.
    pub(super) const FOR_UPDATE: &str = "";

    /// Shared row locks: none needed with one writer.
    pub(super) const FOR_SHARE: &str = "";

    /// Connections waiting for a lock: SQLite's writers wait for the database instead.
    pub(super) const LOCK_WAITS: &str = "SELECT 0";
}
