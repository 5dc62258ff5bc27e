//! The event log.

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use wagate_core::{Event, EventId, EventType, SessionId, Timestamp};

use super::{from_json, from_millis, millis, push_list};
use crate::{EventQuery, StoreError, StoreResult};

/// Rows per multi-row INSERT, well under SQLite's limit on bound variables.
pub(super) const ROWS_PER_INSERT: usize = 500;

/// Appends one event inside the caller's transaction.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    kind: EventType,
    session_id: &SessionId,
    data: serde_json::Value,
    now: Timestamp,
) -> StoreResult<Event> {
    let mut events = insert_many(conn, vec![(kind, session_id.clone(), data)], now).await?;
    events.pop().ok_or_else(|| StoreError::Corrupt("event not appended".into()))
}

/// Appends events in order inside the caller's transaction, a few statements for many events.
pub(super) async fn insert_many(
    conn: &mut SqliteConnection,
    new: Vec<(EventType, SessionId, serde_json::Value)>,
    now: Timestamp,
) -> StoreResult<Vec<Event>> {
    let now = from_millis(millis(now))?;
    let mut events = Vec::with_capacity(new.len());
    let mut rows = new.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        let mut sql = QueryBuilder::<Sqlite>::new("INSERT INTO events (type, session_id, created_at, data) ");
        sql.push_values(&chunk, |mut row, (kind, session, data)| {
            row.push_bind(kind.as_str())
                .push_bind(session.as_str())
                .push_bind(millis(now))
                .push_bind(data.to_string());
        });
        let done = sql.build().execute(&mut *conn).await?;
        // One writer, AUTOINCREMENT: the rows of one INSERT get consecutive sequence numbers,
        // in the order of its VALUES, ending at the last inserted rowid.
        let first = done.last_insert_rowid() - chunk.len() as i64 + 1;
        for (offset, (kind, session, data)) in chunk.into_iter().enumerate() {
            events.push(Event {
                id: EventId::from_seq(first + offset as i64),
                kind,
                session_id: session.to_string(),
                created_at: now,
                data,
            });
        }
    }
    Ok(events)
}

pub(super) async fn list(pool: &SqlitePool, query: EventQuery) -> StoreResult<Vec<Event>> {
    let mut sql = QueryBuilder::<Sqlite>::new(
        "SELECT seq, type, session_id, created_at, data FROM events WHERE seq > ",
    );
    sql.push_bind(query.after.map_or(0, EventId::seq));
    if let Some(session) = &query.session_id {
        sql.push(" AND session_id = ").push_bind(session.as_str());
    }
    if !query.types.is_empty() {
        sql.push(" AND type IN ");
        push_list(&mut sql, query.types.iter().map(|kind| kind.as_str()));
    }
    sql.push(" ORDER BY seq LIMIT ").push_bind(i64::from(query.limit));
    let rows = sql.build().fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("type")?;
            Ok(Event {
                id: EventId::from_seq(row.try_get("seq")?),
                kind: EventType::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("event type {kind}")))?,
                session_id: row.try_get("session_id")?,
                created_at: from_millis(row.try_get("created_at")?)?,
                data: from_json(row.try_get("data")?)?,
            })
        })
        .collect()
}
