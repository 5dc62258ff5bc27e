//! The PostgreSQL store, which several nodes share: the same SQL as SQLite's (the modules
//! under `sql/`), over a connection pool. Writers on every node append events without taking
//! turns; the sequencer numbers them after commit (`dialect::number_committed`).

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

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres};

use crate::keyring::Keyring;
use crate::{NotReady, StoreResult};
use tx::begin;
use values::{corrupt, from_json, from_millis, millis, push_list, push_numbers};

type Db = Postgres;
type DbConn = PgConnection;
type DbPool = PgPool;
type DbRow = PgRow;
type Backend = PgStore;

/// The NOTIFY channel nodes signal each other on.
const SIGNALS: &str = "wagate";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL implementation of [`crate::Store`].
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Seals and opens the secrets kept here.
    keyring: Keyring,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db`), runs pending migrations
    /// (several nodes starting at once take turns: sqlx locks the migration), checks that
    /// `keyring` opens the secrets kept there and seals those kept in plaintext.
    pub async fn open(url: &str, keyring: Keyring) -> StoreResult<Self> {
        // A node that freezes inside a transaction holds its row locks (and, as the sequencer,
        // the event counter): the server ends such a transaction after a few seconds, so the
        // other nodes carry on.
        let options: PgConnectOptions =
            url.parse::<PgConnectOptions>()?.options([("idle_in_transaction_session_timeout", "5000")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = Self { pool, keyring };
        secrets::on_open(&store).await?;
        Ok(store)
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers and its migrations are the ones this version needs.
    async fn check_ready(&self) -> Result<(), NotReady> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| NotReady::Database(e.to_string()))?;
        let expected: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        if applied == expected {
            Ok(())
        } else {
            Err(NotReady::Migrations(format!("applied {applied:?}, this version needs {expected:?}")))
        }
    }

    /// A connection to write on.
    async fn writer(&self) -> StoreResult<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn readers(&self) -> &PgPool {
        &self.pool
    }

    /// All in one statement, so one transaction: each commit that notifies takes a lock shared
    /// by the whole database server, so notifying one by one would make every node wait.
    async fn send_signals(&self, messages: Vec<String>) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, message) FROM unnest($2::text[]) AS message")
            .bind(SIGNALS)
            .bind(messages)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Listens on its own connection; the task ends when the receiver is dropped. A lost
    /// connection is re-established by the listener (signals sent meanwhile are missed, which
    /// the periodic heartbeat and polls cover).
    async fn signals(
        &self,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<wagate_core::Signal>>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(SIGNALS).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => match notification.payload().parse() {
                        Ok(signal) => {
                            if tx.send(signal).is_err() {
                                return;
                            }
                        }
                        // From a node of another version, perhaps: it beats on its own anyway.
                        Err(e) => tracing::warn!(error = %e, "ignoring an unknown signal"),
                    },
                    Ok(None) => continue,
                    // The store was closed: this node is stopping.
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(e) => {
                        if tx.is_closed() {
                            return;
                        }
                        tracing::warn!(error = %e, "lost the signal connection; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Some(rx))
    }
}

/// What differs in PostgreSQL's SQL.
mod dialect {
    use super::{DbConn, DbPool, StoreResult};

    /// Numbers for `count` events being appended: none. Writers on several nodes append at
    /// once, and a number taken inside a transaction would become visible at its commit, out
    /// of order; the sequencer numbers events once they are committed ([`number_committed`]).
    pub(super) async fn number_at_append(_conn: &mut DbConn, _count: i64) -> StoreResult<Option<i64>> {
        Ok(None)
    }

    /// Numbers up to `limit` committed events that have none, in the order they were appended,
    /// inside the caller's transaction; answers the first and last number given.
    ///
    /// Locking the counter row makes sequencers take turns; the statements after it run on a
    /// newer snapshot (READ COMMITTED), so they see what the previous sequencer numbered and
    /// every event committed since. An event whose writer has not committed yet is numbered by
    /// a later turn: it comes later in the log, and no reader has moved past it.
    ///
    /// The events waiting are listed in `events_pending` (by a trigger on `events`, in their
    /// writer's transaction); a turn takes them off it. A row listed there whose event is gone
    /// or already numbered (by a node of an earlier version) is taken off and numbers nothing.
    pub(super) async fn number_committed(conn: &mut DbConn, limit: i64) -> StoreResult<Option<(i64, i64)>> {
        let last: i64 =
            sqlx::query_scalar("SELECT last FROM event_counter FOR UPDATE").fetch_one(&mut *conn).await?;
        let numbered: i64 = sqlx::query_scalar(
            "WITH taken AS (DELETE FROM events_pending WHERE pk = ANY \
             (ARRAY(SELECT pk FROM events_pending ORDER BY pk LIMIT $2)) RETURNING pk), \
             batch AS (SELECT e.pk, row_number() OVER (ORDER BY e.pk) AS n FROM events e \
             JOIN taken ON taken.pk = e.pk WHERE e.seq IS NULL), \
             numbered AS (UPDATE events e SET seq = $1 + batch.n FROM batch WHERE e.pk = batch.pk RETURNING 1) \
             SELECT COUNT(*) FROM numbered",
        )
        .bind(last)
        .bind(limit)
        .fetch_one(&mut *conn)
        .await?;
        if numbered == 0 {
            return Ok(None);
        }
        sqlx::query("UPDATE event_counter SET last = $1").bind(last + numbered).execute(&mut *conn).await?;
        Ok(Some((last + 1, last + numbered)))
    }

    /// Numbers between two cleanups of the list of waiting events.
    const TIDY_EVERY: i64 = 10_000;

    /// After a turn numbered `first..=last`: clears the rows the turns took off the list of
    /// waiting events, once every [`TIDY_EVERY`] numbers (by the one turn that crosses a
    /// multiple). Until a vacuum clears them, each look at the list walks past them; autovacuum
    /// comes at most once a minute (300,000 rows at 5,000 events a second). A vacuum of the
    /// small table takes a millisecond or two, and one another node is running is skipped, not
    /// waited for.
    pub(super) async fn tidy_numbered(pool: &DbPool, first: i64, last: i64) -> StoreResult<()> {
        if (first - 1) / TIDY_EVERY == last / TIDY_EVERY {
            return Ok(());
        }
        sqlx::raw_sql("VACUUM (SKIP_LOCKED) events_pending").execute(pool).await?;
        Ok(())
    }

    /// Whether events wait to be numbered, and how many and since when.
    pub(super) const ANY_UNNUMBERED: &str = "SELECT EXISTS (SELECT 1 FROM events_pending)";
    pub(super) const UNNUMBERED: &str =
        "SELECT COUNT(*), MIN(e.created_at) FROM events_pending p JOIN events e ON e.pk = p.pk";

    /// The elements of a JSON array (as `value`), as a table.
    pub(super) fn json_elements(array: &str) -> String {
        format!("jsonb_array_elements(CAST({array} AS jsonb))")
    }

    /// The elements of a JSON array of strings (as `value`, text), as a table: the SQL before
    /// and after the array (`values::json_text_elements`).
    pub(super) const JSON_TEXT_ELEMENTS: [&str; 2] = ["jsonb_array_elements_text(CAST(", " AS jsonb))"];

    /// A value among a subquery's rows, the SQL before and after the subquery: `= ANY
    /// (ARRAY(…))` runs the subquery once and looks the values up in an index, where `IN (…)`
    /// may be planned as a join that reads all of a session's messages, say.
    pub(super) const AMONG: [&str; 2] = [" = ANY (ARRAY(", "))"];

    /// The rows of a JSON array of arrays as the table `r`: a row's array as `r.value`, its place
    /// in the array (from 1) as `r.n`.
    pub(super) fn json_rows(array: &str) -> String {
        format!("jsonb_array_elements(CAST({array} AS jsonb)) WITH ORDINALITY AS r (value, n)")
    }

    /// The rows `subquery` gives for each row of the JSON rows `array` (of `rows` rows), as one
    /// table: `subquery` is given the SQL of its row's JSON array. One statement whatever the
    /// number of rows, planned once per connection: a claim for many sessions written as a
    /// `UNION ALL` of one subquery each varied with their number, and took about 5 ms to plan
    /// at every call (with 256 sessions).
    pub(super) fn for_each_json_row(array: &str, _rows: usize, subquery: impl Fn(&str) -> String) -> String {
        format!(
            "SELECT per_row.* FROM {} CROSS JOIN LATERAL ({}) AS per_row",
            json_rows(array),
            subquery("r.value")
        )
    }

    /// A condition that `key` is among the `element`s of the JSON rows `array` ([`json_rows`]),
    /// for a statement that joins a table to those rows by its key: it gives the planner an index
    /// path whatever it estimates. PostgreSQL guesses 100 rows of a JSON array, and a join
    /// planned while the table was small scanned all of it, and went on doing so as it grew
    /// (webhook attempts took 7.8 ms a statement instead of 0.8).
    pub(super) fn among_json_rows(key: &str, element: &str, array: &str) -> String {
        format!("{key} = ANY (ARRAY(SELECT {element} FROM {}))", json_rows(array))
    }

    /// What makes a read transaction see one snapshot of the database (under READ COMMITTED,
    /// each statement sees its own).
    pub(super) const SNAPSHOT: Option<&str> =
        Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");

    /// The column events are appended in order of (events are numbered after they commit, in this order).
    pub(super) const APPEND_ORDER: &str = "pk";

    /// Events are numbered by the sequencer once committed, not as they are appended.
    pub(super) const NUMBERED_AT_APPEND: bool = false;

    /// A pool of writers: write transactions run side by side.
    pub(super) const ONE_WRITER: bool = false;

    /// Row locks for a claim: rows another transaction is claiming are skipped, not waited for.
    pub(super) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

    /// Row locks for rows a transaction read to decide how to change them. `NO KEY` lets other
    /// transactions go on inserting rows that refer to them (a session's messages, a
    /// campaign's).
    pub(super) const FOR_UPDATE: &str = " FOR NO KEY UPDATE";

    /// Row locks for rows a transaction relies on staying as read until it commits (a lease).
    pub(super) const FOR_SHARE: &str = " FOR SHARE";

    /// How many connections to this database wait for a lock now.
    pub(super) const LOCK_WAITS: &str = "SELECT COUNT(*) FROM pg_stat_activity \
        WHERE datname = current_database() AND wait_event_type = 'Lock'";
}
