//! The store as a whole: readiness, closing, sealing secrets again, and the counts monitoring
//! reads, over each backend's own pieces.

use async_trait::async_trait;

use super::secrets::{self, Reseal};
use super::{dialect, from_millis, Backend};
use crate::{NotReady, Stats, Store, StoreResult};

#[async_trait]
impl Store for Backend {
    async fn ready(&self) -> Result<(), NotReady> {
        self.check_ready().await
    }

    async fn close(&self) {
        // The backend's own `close` (inherent methods come first).
        Backend::close(self).await;
    }

    async fn reseal_secrets(&self) -> StoreResult<u64> {
        secrets::reseal(self, Reseal::All).await
    }

    async fn sealing_key_ids(&self) -> StoreResult<Vec<String>> {
        secrets::key_ids(self).await
    }

    async fn stats(&self) -> StoreResult<Stats> {
        let sessions: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT connector, status, COUNT(*) FROM sessions GROUP BY connector, status")
                .fetch_all(self.readers())
                .await?;
        let (outbox, outbox_oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM messages WHERE due_at IS NOT NULL AND held = 0",
        )
        .fetch_one(self.readers())
        .await?;
        let (pending, pending_oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(self.readers())
        .await?;
        let (unnumbered, unnumbered_oldest): (i64, Option<i64>) =
            sqlx::query_as(dialect::UNNUMBERED).fetch_one(self.readers()).await?;
        let lock_waits: i64 = sqlx::query_scalar(dialect::LOCK_WAITS).fetch_one(self.readers()).await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Stats {
            sessions: sessions.into_iter().map(|(c, s, n)| (c, s, count(n))).collect(),
            outbox: count(outbox),
            outbox_oldest: outbox_oldest.map(from_millis).transpose()?,
            deliveries_pending: count(pending),
            deliveries_oldest: pending_oldest.map(from_millis).transpose()?,
            events_unnumbered: count(unnumbered),
            events_unnumbered_oldest: unnumbered_oldest.map(from_millis).transpose()?,
            lock_waits: count(lock_waits),
        })
    }
}
