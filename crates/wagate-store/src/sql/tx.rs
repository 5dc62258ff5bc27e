//! The two kinds of write transaction. Events are numbered as they are appended, and a reader
//! must never see event n+1 before event n: so a transaction that appends events takes its
//! turn behind every other such transaction (on PostgreSQL, the write lock; SQLite has one
//! writer anyway). That kind is an [`EventTx`], made only by [`begin`], and appending an event
//! requires one. A transaction that appends no event (device keys, contacts) needs no turn:
//! [`begin_unordered`].

use std::ops::{Deref, DerefMut};

use sqlx::{Connection, Transaction};

use super::{dialect, Db, DbConn};
use crate::StoreResult;

/// A write transaction that may append events, holding its turn until it ends.
pub(super) struct EventTx<'c>(Transaction<'c, Db>);

impl EventTx<'_> {
    pub(super) async fn commit(self) -> StoreResult<()> {
        Ok(self.0.commit().await?)
    }
}

impl Deref for EventTx<'_> {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        &self.0
    }
}

impl DerefMut for EventTx<'_> {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.0
    }
}

/// Starts a write transaction that may append events, waiting for its turn.
pub(super) async fn begin(conn: &mut DbConn) -> StoreResult<EventTx<'_>> {
    let mut tx = conn.begin().await?;
    dialect::take_event_turn(&mut tx).await?;
    Ok(EventTx(tx))
}

/// Starts a write transaction that appends no events, so takes no turn.
pub(super) async fn begin_unordered(conn: &mut DbConn) -> StoreResult<Transaction<'_, Db>> {
    Ok(conn.begin().await?)
}
