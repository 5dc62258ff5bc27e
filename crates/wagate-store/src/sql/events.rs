//! The event log.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use wagate_core::{
    Event, EventData, EventId, EventType, MessageId, OrgId, SessionId, StatusEntry, Timestamp,
};

use super::values::{json_array, json_text_elements, ROWS_PER_INSERT};
use super::{begin, corrupt, dialect, from_millis, millis, push_list, Backend, Db, DbConn, DbRow};
use crate::{Appended, EventQuery, Events, Numbered, StoreError, StoreResult};

/// Events the sequencer numbers per transaction.
const SEQUENCE_BATCH: i64 = 1000;

/// Appends one event inside the caller's transaction.
pub(super) async fn insert(
    conn: &mut DbConn,
    session_id: &SessionId,
    data: EventData,
    now: Timestamp,
) -> StoreResult<Appended> {
    let mut events = insert_many(conn, vec![(Some(session_id.clone()), data)], now).await?;
    events.pop().ok_or_else(|| StoreError::Corrupt("event not appended".into()))
}

/// An event to append: the session it is about (if any) and what it says.
pub(super) type NewEvent = (Option<SessionId>, EventData);

/// Which webhooks want an event: SQL over `w` (webhooks) and `e` (events). A webhook limited
/// to a session wants only that session's events; a filter is an exact type, `prefix.*` or `*`
/// (as `EventType::matches`).
pub(super) fn webhook_wants_event() -> String {
    format!(
        "w.org_id = e.org_id AND (w.session_id IS NULL OR w.session_id = e.session_id) \
         AND EXISTS (SELECT 1 FROM {} f WHERE f.value = '*' OR f.value = e.type \
         OR (f.value LIKE '%.*' AND substr(e.type, 1, length(f.value) - 1) = substr(f.value, 1, length(f.value) - 1)))",
        json_text_elements("w.events")
    )
}

/// Appends events in order inside the caller's transaction, a few statements for many events.
/// Where the database numbers them at once (SQLite), their webhook deliveries are queued here
/// too; otherwise the sequencer does both once they are committed ([`Events::sequence_events`]).
pub(super) async fn insert_many(
    conn: &mut DbConn,
    new: Vec<NewEvent>,
    now: Timestamp,
) -> StoreResult<Vec<Appended>> {
    let now = from_millis(millis(now))?;
    // An event belongs to its session's organization, or (about a webhook) its webhook's; rows
    // are inserted in the order given, which is the log's order.
    let sql = format!(
        "INSERT INTO events (seq, type, session_id, message_id, created_at, data, org_id) \
         SELECT CAST(r.value ->> 0 AS BIGINT), r.value ->> 1, r.value ->> 2, r.value ->> 3, $1, r.value ->> 4, \
         COALESCE((SELECT org_id FROM sessions WHERE id = r.value ->> 2), \
         (SELECT org_id FROM webhooks WHERE id = r.value ->> 5)) FROM {} ORDER BY r.n",
        dialect::json_rows("$2")
    );
    let mut events = Vec::with_capacity(new.len());
    let mut rows = new.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        let count = chunk.len() as i64;
        let numbers = dialect::number_at_append(conn, count).await?;
        let values: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(offset, (session, data))| {
                let webhook = match data {
                    EventData::WebhookDisabled(disabled) => Some(disabled.webhook_id.as_str()),
                    _ => None,
                };
                (
                    numbers.map(|last| last - count + 1 + offset as i64),
                    data.kind().as_str(),
                    session.as_ref().map(SessionId::as_str),
                    data.message_id().map(MessageId::as_str),
                    data.to_json(),
                    webhook,
                )
            })
            .collect();
        sqlx::query(&sql).bind(millis(now)).bind(json_array(&values)).execute(&mut *conn).await?;
        if let Some(last) = numbers {
            queue_deliveries(conn, last - count + 1, last, now).await?;
        }
        events.extend(chunk.into_iter().map(|(session_id, data)| Appended { session_id, data }));
    }
    Ok(events)
}

/// Queues deliveries of the events `first..=last` to the enabled webhooks that want them.
async fn queue_deliveries(conn: &mut DbConn, first: i64, last: i64, now: Timestamp) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO webhook_deliveries (webhook_id, event_seq, status, next_attempt_at, created_at, updated_at) \
         SELECT w.id, e.seq, 'pending', $1, $1, $1 FROM events e JOIN webhooks w ON w.enabled \
         WHERE e.seq BETWEEN $2 AND $3 AND {} ORDER BY e.seq, w.id",
        webhook_wants_event()
    ))
    .bind(millis(now))
    .bind(first)
    .bind(last)
    .execute(conn)
    .await?;
    Ok(())
}

/// An event from a row with its columns `seq, type, session_id, org_id, created_at, data`.
pub(super) fn from_row(row: &DbRow) -> StoreResult<Event> {
    let kind: String = row.try_get("type")?;
    let kind = EventType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("event type {kind}")))?;
    let session: Option<String> = row.try_get("session_id")?;
    let org: Option<String> = row.try_get("org_id")?;
    let data: String = row.try_get("data")?;
    Ok(Event {
        id: EventId::from_seq(row.try_get("seq")?),
        session_id: session
            .map(|s| SessionId::parse(&s).map_err(|e| StoreError::Corrupt(format!("event session: {e}"))))
            .transpose()?,
        org_id: org
            .map(|org| OrgId::parse(&org).map_err(|_| corrupt("event organization", &org)))
            .transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        data: EventData::from_json(kind, &data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

#[async_trait]
impl Events for Backend {
    async fn list_events(&self, query: EventQuery) -> StoreResult<Vec<Event>> {
        let pool = self.readers();
        let mut sql = QueryBuilder::<Db>::new(
            "SELECT seq, type, session_id, org_id, created_at, data FROM events WHERE seq > ",
        );
        sql.push_bind(query.after.map_or(0, EventId::seq));
        if let Some(org) = &query.org_id {
            sql.push(" AND org_id = ").push_bind(org.as_str());
        }
        if let Some(session) = &query.session_id {
            sql.push(" AND session_id = ").push_bind(session.as_str());
        }
        if let Some(sessions) = &query.sessions {
            sql.push(" AND session_id");
            push_list(&mut sql, sessions.iter().map(SessionId::as_str));
        }
        if !query.types.is_empty() {
            sql.push(" AND type");
            push_list(&mut sql, query.types.iter().map(|kind| kind.as_str()));
        }
        sql.push(" ORDER BY seq LIMIT ").push_bind(i64::from(query.limit));
        let rows = sql.build().fetch_all(pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// The id of the newest event, if any.
    async fn last_event_id(&self) -> StoreResult<Option<EventId>> {
        let pool = self.readers();
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events").fetch_one(pool).await?;
        Ok(seq.map(EventId::from_seq))
    }

    async fn append_event(
        &self,
        session_id: &SessionId,
        data: EventData,
        now: Timestamp,
    ) -> StoreResult<Appended> {
        let mut writer = self.writer().await?;
        let mut tx = begin(&mut writer).await?;
        let event = insert(&mut tx, session_id, data, now).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn sequence_events(&self, now: Timestamp) -> StoreResult<Numbered> {
        let mut numbered = Numbered::default();
        if dialect::NUMBERED_AT_APPEND {
            return Ok(numbered);
        }
        let now = from_millis(millis(now))?;
        // Most calls find nothing to number: a read answers that without taking the writer or
        // the sequencer's turn.
        let waiting: bool = sqlx::query_scalar(dialect::ANY_UNNUMBERED).fetch_one(self.readers()).await?;
        if !waiting {
            return Ok(numbered);
        }
        loop {
            let mut writer = self.writer().await?;
            let mut tx = begin(&mut writer).await?;
            let turn = dialect::number_committed(&mut tx, SEQUENCE_BATCH).await?;
            if let Some((first, last)) = turn {
                queue_deliveries(&mut tx, first, last, now).await?;
            }
            // Committed even when nothing was numbered: what the turn took off the waiting list
            // without numbering (see `number_committed`) stays off it.
            tx.commit().await?;
            let Some((first, last)) = turn else { return Ok(numbered) };
            drop(writer);
            // What was numbered is committed: a cleanup that fails is tried at the next multiple.
            if let Err(e) = dialect::tidy_numbered(self.readers(), first, last).await {
                tracing::warn!(error = %e, "could not clear the list of events waiting to be numbered");
            }
            numbered.turns.push(EventId::from_seq(first)..=EventId::from_seq(last));
            if last - first + 1 < SEQUENCE_BATCH {
                return Ok(numbered);
            }
        }
    }

    fn numbers_at_append(&self) -> bool {
        dialect::NUMBERED_AT_APPEND
    }
}

#[cfg(feature = "testing")]
impl Backend {
    /// Appends one event, then holds its transaction open for `stall` before committing: a
    /// writer that stalls inside its transaction, for tests of the log's ordering guarantee.
    pub async fn append_event_stalled(
        &self,
        session_id: &SessionId,
        data: EventData,
        now: Timestamp,
        stall: std::time::Duration,
    ) -> StoreResult<Appended> {
        let mut writer = self.writer().await?;
        let mut tx = begin(&mut writer).await?;
        let event = insert(&mut tx, session_id, data, now).await?;
        tokio::time::sleep(stall).await;
        tx.commit().await?;
        Ok(event)
    }
}

/// The steps of a message's status history its events recorded, in log order (events not
/// numbered yet included: they were appended in this order).
pub(super) async fn history_of(conn: &mut DbConn, id: &MessageId) -> StoreResult<Vec<StatusEntry>> {
    let sql = format!(
        "SELECT type, created_at, data FROM events WHERE message_id = $1 ORDER BY {}",
        dialect::APPEND_ORDER
    );
    let rows = sqlx::query(&sql).bind(id.as_str()).fetch_all(conn).await?;
    let mut history = Vec::with_capacity(rows.len());
    for row in &rows {
        let kind: String = row.try_get("type")?;
        let kind = EventType::parse(&kind).ok_or_else(|| corrupt("event type", &kind))?;
        let data = EventData::from_json(kind, row.try_get("data")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        history.extend(data.status_entry(from_millis(row.try_get("created_at")?)?));
    }
    Ok(history)
}
