//! The PostgreSQL store, which several nodes share: the same SQL as SQLite's (the modules
//! under `sql/`), over a connection pool. Transactions that append events take turns through
//! one advisory lock, so event numbers are committed in order across every node.

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

use crate::{NotReady, StoreResult};
use tx::{begin, begin_unordered};
use values::{corrupt, from_json, from_millis, millis, push_list};

type Db = Postgres;
type DbConn = PgConnection;
type DbPool = PgPool;
type DbRow = PgRow;
type Backend = PgStore;

/// The NOTIFY channel nodes signal each other on.
const SIGNALS: &str = "wagate";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The key of the advisory lock that event-appending transactions take (any fixed number; this one
/// spells "wagate" in ASCII).
const WRITE_LOCK: i64 = 0x7761_6761_7465;

/// The PostgreSQL implementation of [`crate::Store`].
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db`) and runs pending
    /// migrations (several nodes starting at once take turns: sqlx locks the migration).
    pub async fn open(url: &str) -> StoreResult<Self> {
        // A node that freezes inside a transaction holds the write lock: the server ends such
        // a transaction after a few seconds, so the other nodes carry on.
        let options: PgConnectOptions =
            url.parse::<PgConnectOptions>()?.options([("idle_in_transaction_session_timeout", "5000")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
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

    /// A connection to write on; `begin` makes its transactions take turns, `begin_unordered`
    /// does not.
    async fn writer(&self) -> StoreResult<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    fn readers(&self) -> &PgPool {
        &self.pool
    }

    async fn send_signal(&self, message: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(SIGNALS).bind(message).execute(&self.pool).await?;
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
    use super::tx::EventTx;
    use super::{DbConn, StoreResult, WRITE_LOCK};

    /// Waits for the turn to append events: the write lock, held until the transaction ends.
    pub(super) async fn take_event_turn(conn: &mut DbConn) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *conn).await?;
        Ok(())
    }

    /// Takes the next `count` event numbers; returns the last. The counter is a row, not a
    /// sequence, so a rolled-back transaction leaves no gap.
    pub(super) async fn take_event_seqs(tx: &mut EventTx<'_>, count: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("UPDATE event_counter SET last = last + $1 RETURNING last")
            .bind(count)
            .fetch_one(&mut **tx)
            .await?)
    }

    /// The elements of a JSON array (as `value`), as a table.
    pub(super) fn json_elements(array: &str) -> String {
        format!("jsonb_array_elements(CAST({array} AS jsonb))")
    }

    /// The elements of a JSON array of strings (as `value`, text), as a table.
    pub(super) fn json_text_elements(array: &str) -> String {
        format!("jsonb_array_elements_text(CAST({array} AS jsonb))")
    }

    /// Row locks for a claim. Claims run under the write lock today, so no two overlap and
    /// this never skips a row; it keeps a claim correct (skipping rows another node is
    /// claiming rather than waiting for them) should claims ever run outside that lock.
    pub(super) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
}
