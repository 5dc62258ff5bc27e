//! The row layer of the `messages` table, shared by direct sends, inbound messages and
//! campaigns: the columns, reading a row, and every statement that writes a message. A
//! message's status history is its events (`events::history_of`). Callers bring the
//! transaction.

use std::collections::HashMap;

use sqlx::{Column, QueryBuilder, Row};
use wagate_core::{
    CampaignId, Direction, Message, MessageContent, MessageId, MessageStatus, SessionId, Timestamp,
};

use super::values::{execute_rows, json_array, ROWS_PER_INSERT};
use super::{corrupt, dialect, from_json, from_millis, millis, push_list, Db, DbConn, DbRow};
use crate::{NewCampaign, StoreError, StoreResult};

/// The columns `from_row` reads.
pub(super) const COLUMNS: &str =
    "id, session_id, direction, chat, sender, recipient, content, status, scheduled_at, \
    status_reason, wa_id, campaign_id, context, mentions, sender_info, created_at, updated_at";

/// The columns of a message as the API shows it: with when a waiting message is tried next.
pub(super) const SHOWN_COLUMNS: &str =
    "id, session_id, direction, chat, sender, recipient, content, status, \
    scheduled_at, status_reason, wa_id, campaign_id, context, mentions, sender_info, created_at, updated_at, \
    CASE WHEN status = 'queued' AND due_at > updated_at THEN due_at END AS next_attempt_at";

pub(super) fn from_row(row: &DbRow) -> StoreResult<Message> {
    let id: String = row.try_get("id")?;
    let campaign_id: Option<String> = row.try_get("campaign_id")?;
    let next_attempt_at = if row.columns().iter().any(|c| c.name() == "next_attempt_at") {
        row.try_get::<Option<i64>, _>("next_attempt_at")?.map(from_millis).transpose()?
    } else {
        None
    };
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
        scheduled_at: row.try_get::<Option<i64>, _>("scheduled_at")?.map(from_millis).transpose()?,
        campaign_id: campaign_id
            .map(|id| CampaignId::parse(&id).map_err(|_| corrupt("campaign id", &id)))
            .transpose()?,
        next_attempt_at,
        context: row.try_get::<Option<&str>, _>("context")?.map(from_json).transpose()?,
        mentions: row.try_get::<Option<&str>, _>("mentions")?.map(from_json).transpose()?.unwrap_or_default(),
        sender: row.try_get::<Option<&str>, _>("sender_info")?.map(from_json).transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        status_history: Vec::new(),
    })
}

/// The message matching `condition`, locked until the transaction ends (as are the messages
/// the other `fetch_` functions find: they are read to be changed).
pub(super) async fn fetch_where(
    conn: &mut DbConn,
    condition: &str,
    binds: &[&str],
) -> StoreResult<Option<Message>> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE {condition}{}", dialect::FOR_UPDATE);
    let mut query = sqlx::query(&sql);
    for value in binds {
        query = query.bind(*value);
    }
    let row = query.fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// Looks up messages by id, a few statements for many ids.
pub(super) async fn fetch_many(conn: &mut DbConn, ids: &[String]) -> StoreResult<HashMap<String, Message>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let mut sql = QueryBuilder::<Db>::new(format!("SELECT {COLUMNS} FROM messages WHERE id"));
        push_list(&mut sql, chunk.iter().map(|id| id.as_str()));
        // Locked in id order, as every batch locks messages, so two batches cannot deadlock over them.
        sql.push(" ORDER BY id").push(dialect::FOR_UPDATE);
        for row in sql.build().fetch_all(&mut *conn).await? {
            let message = from_row(&row)?;
            found.insert(message.id.to_string(), message);
        }
    }
    Ok(found)
}

/// Messages in one direction, by session and WhatsApp id, locked: one statement for up to
/// [`ROWS_PER_INSERT`] keys, each a JSON row `[session, wa_id]` looked up in the index on
/// `(session_id, direction, wa_id)`, so a lookup costs the same however many messages its
/// session holds.
pub(super) async fn fetch_by_wa_ids(
    conn: &mut DbConn,
    direction: Direction,
    keys: impl IntoIterator<Item = (SessionId, String)>,
) -> StoreResult<HashMap<(SessionId, String), Message>> {
    let keys: Vec<(SessionId, String)> = keys.into_iter().collect();
    // Locked in id order, as every batch locks messages, so two batches cannot deadlock over them.
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE id{}SELECT m.id FROM {} JOIN messages m \
         ON m.session_id = r.value ->> 0 AND m.direction = $2 AND m.wa_id = r.value ->> 1{} ORDER BY id{}",
        dialect::AMONG[0],
        dialect::json_rows("$1"),
        dialect::AMONG[1],
        dialect::FOR_UPDATE
    );
    let mut found = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let rows: Vec<(&str, &str)> =
            chunk.iter().map(|(session, wa_id)| (session.as_str(), wa_id.as_str())).collect();
        let query = sqlx::query(&sql).bind(json_array(&rows)).bind(direction.as_str());
        for row in query.fetch_all(&mut *conn).await? {
            let message = from_row(&row)?;
            if let Some(wa_id) = message.wa_id.clone() {
                found.insert((message.session_id.clone(), wa_id), message);
            }
        }
    }
    Ok(found)
}

/// Inserts messages, each with its idempotency key (if any); an outbound one waits to be sent
/// from its scheduled time, or from when it was accepted.
pub(super) async fn insert_messages(
    conn: &mut DbConn,
    rows: &[(Message, Option<String>)],
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO messages (id, session_id, direction, chat, sender, recipient, kind, content, \
         status, status_reason, wa_id, idempotency_key, scheduled_at, campaign_id, context, mentions, \
         sender_info, created_at, updated_at, due_at) \
         SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, r.value ->> 5, \
         r.value ->> 6, r.value ->> 7, r.value ->> 8, r.value ->> 9, r.value ->> 10, r.value ->> 11, \
         CAST(r.value ->> 12 AS BIGINT), r.value ->> 13, r.value ->> 14, r.value ->> 15, r.value ->> 16, \
         CAST(r.value ->> 17 AS BIGINT), CAST(r.value ->> 18 AS BIGINT), CAST(r.value ->> 19 AS BIGINT) \
         FROM {} ORDER BY r.n",
        dialect::json_rows("$1")
    );
    let json = |message: &Message| -> Result<_, serde_json::Error> {
        let context = message.context.as_ref().map(serde_json::to_string).transpose()?;
        let mentions =
            (!message.mentions.is_empty()).then(|| serde_json::to_string(&message.mentions)).transpose()?;
        let sender = message.sender.as_ref().map(serde_json::to_string).transpose()?;
        Ok((serde_json::to_string(&message.content)?, context, mentions, sender))
    };
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut values = Vec::with_capacity(chunk.len());
        for (message, key) in chunk {
            let (content, context, mentions, sender) =
                json(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            // Twenty values: more than serde serializes as a tuple.
            values.push(serde_json::json!([
                message.id.as_str(),
                message.session_id.as_str(),
                message.direction.as_str(),
                message.chat,
                message.from,
                message.to,
                message.content.kind(),
                content,
                message.status.as_str(),
                message.status_reason,
                message.wa_id,
                key,
                message.scheduled_at.map(millis),
                message.campaign_id.as_ref().map(|id| id.as_str()),
                context,
                mentions,
                sender,
                millis(message.created_at),
                millis(message.updated_at),
                (message.direction == Direction::Out)
                    .then(|| millis(message.scheduled_at.unwrap_or(message.created_at))),
            ]));
        }
        sqlx::query(&sql).bind(json_array(&values)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes messages' current statuses, one statement for many (and fills in the sender of
/// messages accepted before their session was linked). A message past `sending` leaves the
/// queue; one put back to `queued` is made due again by its caller.
pub(super) async fn write_statuses(conn: &mut DbConn, messages: &[&Message]) -> StoreResult<()> {
    let sql = format!(
        "UPDATE messages SET status = v.status, status_reason = v.reason, wa_id = v.wa_id, \
         updated_at = v.at, \
         sent_at = CASE WHEN sent_at IS NULL AND v.status IN ('sent', 'delivered', 'read') THEN v.at \
         ELSE sent_at END, \
         sender = COALESCE(sender, (SELECT jid FROM sessions WHERE sessions.id = messages.session_id)), \
         due_at = CASE WHEN v.status IN ('queued', 'scheduled', 'sending') THEN due_at END, \
         locked_until = CASE WHEN v.status IN ('queued', 'scheduled', 'sending') THEN locked_until END \
         FROM (SELECT r.value ->> 0 AS id, r.value ->> 1 AS status, r.value ->> 2 AS reason, \
         r.value ->> 3 AS wa_id, CAST(r.value ->> 4 AS BIGINT) AS at FROM {}) AS v \
         WHERE messages.id = v.id AND {}",
        dialect::json_rows("$1"),
        dialect::among_json_rows("messages.id", "r.value ->> 0", "$1")
    );
    execute_rows(conn, &sql, messages, |message| {
        (
            message.id.as_str(),
            message.status.as_str(),
            message.status_reason.as_deref(),
            message.wa_id.as_deref(),
            millis(message.updated_at),
        )
    })
    .await
}

/// Recipients written per statement, each statement binding them as one JSON array: for
/// 100,000 recipients, a few dozen statements instead of over a million bound values.
const RECIPIENTS_PER_STATEMENT: usize = 5_000;

/// Inserts a campaign's messages, one per recipient (ids in recipient order).
pub(super) async fn insert_campaign_messages(
    conn: &mut DbConn,
    id: &CampaignId,
    new: &NewCampaign,
    sender: Option<String>,
    status: MessageStatus,
    scheduled_at: Option<Timestamp>,
    now: Timestamp,
) -> StoreResult<()> {
    let kind = new.recipients.first().map_or("text", |(_, content)| content.kind());
    for chunk in new.recipients.chunks(RECIPIENTS_PER_STATEMENT) {
        let mut rows = Vec::with_capacity(chunk.len());
        for (to, content) in chunk {
            let content = serde_json::to_string(content).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            rows.push(serde_json::json!([MessageId::generate(), to.to_string(), content]));
        }
        sqlx::query(&format!(
            "INSERT INTO messages (id, session_id, direction, chat, sender, recipient, kind, content, status, \
             scheduled_at, campaign_id, created_at, updated_at, due_at, bulk) \
             SELECT r.value ->> 0, $1, 'out', r.value ->> 1, $2, r.value ->> 1, $3, r.value ->> 2, \
             $4, $5, $6, $7, $8, COALESCE($5, $7), 1 FROM {} r",
            dialect::json_elements("$9"),
        ))
        .bind(new.session_id.as_str())
        .bind(&sender)
        .bind(kind)
        .bind(status.as_str())
        .bind(scheduled_at.map(millis))
        .bind(id.as_str())
        .bind(millis(now))
        .bind(millis(now))
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Cancels a campaign's messages not claimed for sending (those being sent finish). Their
/// history ends with this status, read from the rows (no event each).
pub(super) async fn cancel_campaign_messages(
    conn: &mut DbConn,
    id: &CampaignId,
    reason: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE messages SET status = 'canceled', status_reason = $1, updated_at = $2, due_at = NULL, \
         locked_until = NULL WHERE campaign_id = $3 AND status IN ('queued', 'scheduled')",
    )
    .bind(reason)
    .bind(millis(now))
    .bind(id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
