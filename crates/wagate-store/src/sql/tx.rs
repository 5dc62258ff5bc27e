//! Write transactions. None takes a turn behind the others: events appended in one are
//! numbered in commit order by the log itself (`dialect::number_at_append` on SQLite, which has
//! one writer; the sequencer on PostgreSQL, `Events::sequence_events`). A transaction that
//! reads rows to decide how to change them locks them first (`dialect::FOR_UPDATE`), so two
//! writers never both act on what they read before the other committed.

use sqlx::{Connection, Transaction};

use super::{Db, DbConn};
use crate::StoreResult;

/// Starts a write transaction.
pub(super) async fn begin(conn: &mut DbConn) -> StoreResult<Transaction<'_, Db>> {
    Ok(conn.begin().await?)
}
