//! The event log.

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use wagate_core::{Event, EventId, EventType, SessionId, Timestamp};

use super::{from_json, from_millis, millis};
use crate::{EventQuery, StoreError, StoreResult};

/// Appends one event inside the caller's transaction.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    kind: EventType,
    session_id: &SessionId,
    data: serde_json::Value,
    now: Timestamp,
) -> StoreResult<Event> {
    let now = from_millis(millis(now))?;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO events (type, session_id, created_at, data) VALUES (?, ?, ?, ?) RETURNING seq",
    )
    .bind(kind.as_str())
    .bind(session_id.as_str())
    .bind(millis(now))
    .bind(data.to_string())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Event { id: EventId::from_seq(seq), kind, session_id: session_id.to_string(), created_at: now, data })
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
        sql.push(" AND type IN (");
        let mut list = sql.separated(", ");
        for kind in &query.types {
            list.push_bind(kind.as_str());
        }
        sql.push(")");
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
