//! Retention sweeps. Each batch reads a window of the oldest rows on a reader, then deletes
//! the ones it may in one short write transaction that checks every condition again, so a
//! row that changed in between (a delivery retried, a message that got a new status) or that
//! another node deleted first is left as it is.

use async_trait::async_trait;
use sqlx::QueryBuilder;
use wagate_core::{DeliveryId, EventId, MessageId, MessageStatus, Timestamp};

use super::{begin, millis, push_list, push_numbers, Backend, Db, DbConn};
use crate::{Retention, StoreResult, Swept};

/// The statuses of a message that has nothing left to do.
const SETTLED: [MessageStatus; 6] = [
    MessageStatus::Sent,
    MessageStatus::Delivered,
    MessageStatus::Read,
    MessageStatus::Failed,
    MessageStatus::Received,
    MessageStatus::Canceled,
];

/// The rows of one window, oldest first: each key and whether it is older than the cutoff.
/// Answers the keys to delete (those before the first row young enough to keep) and where
/// the next window starts.
fn split_window<K: Clone>(rows: Vec<(K, i64)>, before: i64, limit: u32) -> (Vec<K>, Option<K>) {
    let full = rows.len() >= limit as usize;
    let old = rows.iter().take_while(|(_, at)| *at < before).count();
    let reached_young = old < rows.len();
    let resume = (full && !reached_young).then(|| rows.last().map(|(key, _)| key.clone())).flatten();
    (rows.into_iter().take(old).map(|(key, _)| key).collect(), resume)
}

#[async_trait]
impl Retention for Backend {
    async fn expire_events(
        &self,
        before: Timestamp,
        after: Option<EventId>,
        limit: u32,
    ) -> StoreResult<Swept<EventId>> {
        let before = millis(before);
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT seq, created_at FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after.map_or(0, EventId::seq))
                .bind(i64::from(limit))
                .fetch_all(self.readers())
                .await?;
        let (old, resume) = split_window(rows, before, limit);
        let resume_after = resume.map(EventId::from_seq);
        if old.is_empty() {
            return Ok(Swept { deleted: 0, resume_after });
        }
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        // An event's finished deliveries go with it: they cannot be shown or retried without it.
        let mut sql =
            QueryBuilder::<Db>::new("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND event_seq");
        push_numbers(&mut sql, old.iter().copied());
        sql.build().execute(&mut *tx).await?;
        // The newest event stays, so the log's last id is never forgotten.
        let mut sql = QueryBuilder::<Db>::new("DELETE FROM events WHERE created_at < ");
        sql.push_bind(before)
            .push(" AND seq < (SELECT MAX(seq) FROM events)")
            .push(" AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = events.seq)")
            .push(" AND seq");
        push_numbers(&mut sql, old.iter().copied());
        sql.push(" RETURNING seq");
        let deleted: Vec<i64> = sql.build_query_scalar().fetch_all(&mut *tx).await?;
        if let Some(newest) = deleted.iter().max() {
            sqlx::query("UPDATE event_retention SET expired_through = $1 WHERE expired_through < $1")
                .bind(newest)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Swept { deleted: deleted.len() as u64, resume_after })
    }

    async fn expire_deliveries(
        &self,
        before: Timestamp,
        after: Option<DeliveryId>,
        limit: u32,
    ) -> StoreResult<Swept<DeliveryId>> {
        let before = millis(before);
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, created_at FROM webhook_deliveries WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.map_or(0, DeliveryId::seq))
        .bind(i64::from(limit))
        .fetch_all(self.readers())
        .await?;
        let (old, resume) = split_window(rows, before, limit);
        let resume_after = resume.map(DeliveryId::from_seq);
        if old.is_empty() {
            return Ok(Swept { deleted: 0, resume_after });
        }
        let mut sql = QueryBuilder::<Db>::new(
            "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ",
        );
        sql.push_bind(before).push(" AND id");
        push_numbers(&mut sql, old.iter().copied());
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let deleted = sql.build().execute(conn).await?.rows_affected();
        Ok(Swept { deleted, resume_after })
    }

    async fn expire_messages(
        &self,
        before: Timestamp,
        after: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Swept<MessageId>> {
        let before = millis(before);
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT id, created_at FROM messages WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after.as_ref().map_or("", MessageId::as_str))
                .bind(i64::from(limit))
                .fetch_all(self.readers())
                .await?;
        let (old, resume) = split_window(rows, before, limit);
        let resume_after = resume
            .map(|id| MessageId::parse(&id).map_err(|_| super::corrupt("message id", &id)))
            .transpose()?;
        if old.is_empty() {
            return Ok(Swept { deleted: 0, resume_after });
        }
        let mut sql = QueryBuilder::<Db>::new("DELETE FROM messages WHERE created_at < ");
        sql.push_bind(before).push(" AND status");
        push_list(&mut sql, SETTLED.iter().map(|status| status.as_str()));
        sql.push(" AND id");
        push_list(&mut sql, old.iter().map(String::as_str));
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let deleted = sql.build().execute(conn).await?.rows_affected();
        Ok(Swept { deleted, resume_after })
    }

    async fn events_expired_through(&self) -> StoreResult<Option<EventId>> {
        let through: i64 = sqlx::query_scalar("SELECT expired_through FROM event_retention")
            .fetch_one(self.readers())
            .await?;
        Ok((through > 0).then(|| EventId::from_seq(through)))
    }
}

#[cfg(test)]
mod tests {
    use super::split_window;

    #[test]
    fn a_window_stops_at_the_first_row_to_keep() {
        let rows = vec![(1, 10), (2, 20), (3, 30), (4, 15)];
        assert_eq!(split_window(rows, 25, 4), (vec![1, 2], None));
    }

    #[test]
    fn a_full_window_of_old_rows_goes_on_after_its_last() {
        assert_eq!(split_window(vec![(1, 10), (2, 20)], 25, 2), (vec![1, 2], Some(2)));
        assert_eq!(split_window(vec![(1, 10)], 25, 2), (vec![1], None));
        assert_eq!(split_window(Vec::<(i64, i64)>::new(), 25, 2), (vec![], None));
    }
}
