//! Messages, their status history and the outbox.

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use wagate_core::{
    Direction, Event, EventType, Message, MessageContent, MessageId, MessageStatus, SessionId, StatusChange,
    StatusEntry, Timestamp,
};

use super::{events, from_json, from_millis, millis};
use crate::{
    Accepted, Claimed, MessageQuery, MessageRef, NewInbound, NewOutbound, StatusUpdate, StoreError,
    StoreResult,
};

const COLUMNS: &str = "id, session_id, direction, chat, sender, recipient, content, status, \
    status_reason, wa_id, created_at, updated_at";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value}"))
}

fn from_row(row: &SqliteRow) -> StoreResult<Message> {
    let id: String = row.try_get("id")?;
    let session_id: String = row.try_get("session_id")?;
    let direction: String = row.try_get("direction")?;
    let status: String = row.try_get("status")?;
    Ok(Message {
        id: MessageId::parse(&id).map_err(|_| corrupt("message id", &id))?,
        session_id: SessionId::parse(&session_id).map_err(|_| corrupt("session id", &session_id))?,
        direction: Direction::parse(&direction).ok_or_else(|| corrupt("direction", &direction))?,
        chat: row.try_get("chat")?,
        from: row.try_get("sender")?,
        to: row.try_get("recipient")?,
        content: from_json::<MessageContent>(row.try_get("content")?)?,
        status: MessageStatus::parse(&status).ok_or_else(|| corrupt("message status", &status))?,
        status_reason: row.try_get("status_reason")?,
        wa_id: row.try_get("wa_id")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        status_history: Vec::new(),
    })
}

async fn fetch_where(
    conn: &mut SqliteConnection,
    condition: &str,
    binds: &[&str],
) -> StoreResult<Option<Message>> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE {condition}");
    let mut query = sqlx::query(&sql);
    for value in binds {
        query = query.bind(*value);
    }
    let row = query.fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

async fn fetch(conn: &mut SqliteConnection, id: &MessageId) -> StoreResult<Option<Message>> {
    fetch_where(conn, "id = ?", &[id.as_str()]).await
}

/// The `data` of a `message.status` event.
fn status_event_data(message: &Message) -> serde_json::Value {
    serde_json::json!({
        "message_id": message.id,
        "status": message.status,
        "reason": message.status_reason,
        "chat": message.chat,
        "to": message.to,
        "wa_id": message.wa_id,
    })
}

async fn insert_history(
    conn: &mut SqliteConnection,
    id: &MessageId,
    status: MessageStatus,
    reason: Option<&str>,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO message_status_history (message_id, status, reason, at) VALUES (?, ?, ?, ?)")
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(reason)
        .bind(millis(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn accept(
    pool: &SqlitePool,
    batch: Vec<NewOutbound>,
    now: Timestamp,
) -> StoreResult<Vec<StoreResult<Accepted>>> {
    let now = from_millis(millis(now))?;
    let mut tx = pool.begin().await?;
    let mut results = Vec::with_capacity(batch.len());
    for new in batch {
        if let Some(key) = &new.idempotency_key {
            let earlier = fetch_where(
                &mut tx,
                "session_id = ? AND idempotency_key = ?",
                &[new.session_id.as_str(), key],
            )
            .await?;
            if let Some(message) = earlier {
                results.push(Ok(Accepted { message, created: false, event: None }));
                continue;
            }
        }
        let sender: Option<Option<String>> = sqlx::query_scalar("SELECT jid FROM sessions WHERE id = ?")
            .bind(new.session_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(sender) = sender else {
            results.push(Err(StoreError::NotFound("session")));
            continue;
        };
        let message = Message {
            id: MessageId::generate(),
            session_id: new.session_id,
            direction: Direction::Out,
            chat: new.to.to_string(),
            from: sender,
            to: new.to.to_string(),
            content: new.content,
            status: MessageStatus::Queued,
            status_reason: None,
            wa_id: None,
            created_at: now,
            updated_at: now,
            status_history: Vec::new(),
        };
        insert_message(&mut tx, &message, new.idempotency_key.as_deref()).await?;
        insert_history(&mut tx, &message.id, MessageStatus::Queued, None, now).await?;
        sqlx::query("INSERT INTO outbox (message_id, session_id, available_at) VALUES (?, ?, ?)")
            .bind(message.id.as_str())
            .bind(message.session_id.as_str())
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        let event = events::insert(
            &mut tx,
            EventType::MessageStatus,
            &message.session_id,
            status_event_data(&message),
            now,
        )
        .await?;
        results.push(Ok(Accepted { message, created: true, event: Some(event) }));
    }
    tx.commit().await?;
    Ok(results)
}

/// Inserts a message row; false when an inbound message with the same WhatsApp id exists.
async fn insert_message(
    conn: &mut SqliteConnection,
    message: &Message,
    idempotency_key: Option<&str>,
) -> StoreResult<bool> {
    let content = serde_json::to_string(&message.content).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let done = sqlx::query(
        "INSERT INTO messages (id, session_id, direction, chat, sender, recipient, kind, content,
            status, status_reason, wa_id, idempotency_key, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(message.id.as_str())
    .bind(message.session_id.as_str())
    .bind(message.direction.as_str())
    .bind(&message.chat)
    .bind(&message.from)
    .bind(&message.to)
    .bind(message.content.kind())
    .bind(content)
    .bind(message.status.as_str())
    .bind(&message.status_reason)
    .bind(&message.wa_id)
    .bind(idempotency_key)
    .bind(millis(message.created_at))
    .bind(millis(message.updated_at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a message to `status`, with its history row and event.
async fn set_status(
    conn: &mut SqliteConnection,
    message: &mut Message,
    status: MessageStatus,
    reason: Option<String>,
    wa_id: Option<String>,
    now: Timestamp,
) -> StoreResult<Event> {
    message.status = status;
    message.status_reason = reason;
    message.wa_id = wa_id.or(message.wa_id.take());
    message.updated_at = now;
    // An outbound message accepted before its session linked learns its sender when sent.
    let sender: Option<String> = sqlx::query_scalar(
        "UPDATE messages SET status = ?, status_reason = ?, wa_id = ?, updated_at = ?,
            sender = COALESCE(sender, (SELECT jid FROM sessions WHERE sessions.id = messages.session_id))
         WHERE id = ? RETURNING sender",
    )
    .bind(status.as_str())
    .bind(&message.status_reason)
    .bind(&message.wa_id)
    .bind(millis(now))
    .bind(message.id.as_str())
    .fetch_one(&mut *conn)
    .await?;
    message.from = sender;
    insert_history(conn, &message.id, status, message.status_reason.as_deref(), now).await?;
    events::insert(conn, EventType::MessageStatus, &message.session_id, status_event_data(message), now).await
}

pub(super) async fn claim(
    pool: &SqlitePool,
    session_id: &SessionId,
    limit: u32,
    now: Timestamp,
    lease_until: Timestamp,
) -> StoreResult<(Vec<Claimed>, Vec<Event>)> {
    let now = from_millis(millis(now))?;
    let mut tx = pool.begin().await?;
    let due: Vec<(String, i64)> = sqlx::query_as(
        "UPDATE outbox SET locked_until = ?
         WHERE message_id IN (
            SELECT message_id FROM outbox
            WHERE session_id = ? AND available_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
            ORDER BY message_id LIMIT ?)
         RETURNING message_id, attempts",
    )
    .bind(millis(lease_until))
    .bind(session_id.as_str())
    .bind(millis(now))
    .bind(millis(now))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let mut claimed = Vec::with_capacity(due.len());
    let mut events = Vec::new();
    for (id, attempts) in due {
        let id = MessageId::parse(&id).map_err(|_| corrupt("message id", &id))?;
        let Some(mut message) = fetch(&mut tx, &id).await? else {
            continue;
        };
        match message.status {
            MessageStatus::Queued => {
                events
                    .push(set_status(&mut tx, &mut message, MessageStatus::Sending, None, None, now).await?);
            }
            // A claim whose lease ran out (the node stopped mid-send): the send is tried again.
            MessageStatus::Sending => {}
            _ => {
                sqlx::query("DELETE FROM outbox WHERE message_id = ?")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
        }
        claimed.push(Claimed { message, attempts: u32::try_from(attempts).unwrap_or(u32::MAX) });
    }
    tx.commit().await?;
    claimed.sort_by(|a, b| a.message.id.cmp(&b.message.id));
    Ok((claimed, events))
}

pub(super) async fn next_due(pool: &SqlitePool, session_id: &SessionId) -> StoreResult<Option<Timestamp>> {
    let due: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(MAX(available_at, COALESCE(locked_until, 0))) FROM outbox WHERE session_id = ?",
    )
    .bind(session_id.as_str())
    .fetch_one(pool)
    .await?;
    due.map(from_millis).transpose()
}

pub(super) async fn apply_statuses(
    pool: &SqlitePool,
    updates: Vec<StatusUpdate>,
    now: Timestamp,
) -> StoreResult<Vec<StoreResult<Option<Event>>>> {
    let now = from_millis(millis(now))?;
    let mut tx = pool.begin().await?;
    let mut results = Vec::with_capacity(updates.len());
    for update in updates {
        let found = match &update.message {
            MessageRef::Id(id) => fetch(&mut tx, id).await?,
            MessageRef::WaId(session, wa_id) => {
                fetch_where(
                    &mut tx,
                    "session_id = ? AND direction = 'out' AND wa_id = ?",
                    &[session.as_str(), wa_id],
                )
                .await?
            }
        };
        let Some(mut message) = found else {
            results.push(Ok(None));
            continue;
        };
        match message.status.transition(update.status) {
            Err(illegal) => results.push(Err(illegal.into())),
            Ok(StatusChange::Stale) => results.push(Ok(None)),
            Ok(StatusChange::Apply) => {
                let event =
                    set_status(&mut tx, &mut message, update.status, update.reason, update.wa_id, now)
                        .await?;
                if update.status == MessageStatus::Queued {
                    let retry_at = update.retry_at.unwrap_or(now);
                    sqlx::query(
                        "UPDATE outbox SET available_at = ?, attempts = attempts + 1, locked_until = NULL
                         WHERE message_id = ?",
                    )
                    .bind(millis(retry_at))
                    .bind(message.id.as_str())
                    .execute(&mut *tx)
                    .await?;
                } else if update.status.is_send_result() {
                    sqlx::query("DELETE FROM outbox WHERE message_id = ?")
                        .bind(message.id.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                results.push(Ok(Some(event)));
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

pub(super) async fn store_inbound(
    pool: &SqlitePool,
    batch: Vec<NewInbound>,
    now: Timestamp,
) -> StoreResult<Vec<Event>> {
    let now = from_millis(millis(now))?;
    let mut tx = pool.begin().await?;
    let mut events = Vec::new();
    for new in batch {
        let message = Message {
            id: MessageId::generate(),
            session_id: new.session_id,
            direction: Direction::In,
            chat: new.chat,
            from: Some(new.from),
            to: new.to,
            content: new.content,
            status: MessageStatus::Received,
            status_reason: None,
            wa_id: Some(new.wa_id),
            created_at: from_millis(millis(new.at))?,
            updated_at: now,
            status_history: Vec::new(),
        };
        if !insert_message(&mut tx, &message, None).await? {
            continue;
        }
        insert_history(&mut tx, &message.id, MessageStatus::Received, None, now).await?;
        let data = serde_json::to_value(&message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        events
            .push(events::insert(&mut tx, EventType::MessageReceived, &message.session_id, data, now).await?);
    }
    tx.commit().await?;
    Ok(events)
}

pub(super) async fn get(pool: &SqlitePool, id: &MessageId) -> StoreResult<Option<Message>> {
    let mut conn = pool.acquire().await?;
    let Some(mut message) = fetch(&mut conn, id).await? else {
        return Ok(None);
    };
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, reason, at FROM message_status_history WHERE message_id = ? ORDER BY rowid",
    )
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    message.status_history = rows
        .into_iter()
        .map(|(status, reason, at)| {
            Ok(StatusEntry {
                status: MessageStatus::parse(&status).ok_or_else(|| corrupt("message status", &status))?,
                reason,
                at: from_millis(at)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(Some(message))
}

pub(super) async fn list(pool: &SqlitePool, query: MessageQuery) -> StoreResult<Vec<Message>> {
    let mut sql = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM messages WHERE session_id = "));
    sql.push_bind(query.session_id.as_str());
    if let Some(chat) = &query.chat {
        sql.push(" AND chat = ").push_bind(chat.as_str());
    }
    if let Some(direction) = query.direction {
        sql.push(" AND direction = ").push_bind(direction.as_str());
    }
    if let Some(before) = &query.before {
        sql.push(" AND id < ").push_bind(before.as_str());
    }
    sql.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(query.limit));
    let rows = sql.build().fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}
