//! The lifecycle of messages: outbound ones accepted and waiting to be sent (the outbox is a
//! state of the message row: `due_at` set), claimed, sent and settled by status updates, all
//! committed by `write_outbound` (the writes are in `outbound`); inbound ones stored once.
//! Rows are read and written through `message_rows`.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::QueryBuilder;
use wagate_core::{
    Direction, EventData, Message, MessageId, MessageStatus, ReplyContext, SessionId, Timestamp,
};

use super::contacts;
use super::events;
use super::message_rows::{
    fetch_by_wa_ids, fetch_where, from_row, insert_messages, write_statuses, SHOWN_COLUMNS,
};
use super::outbound::{self, status_events};
use super::{begin, corrupt, dialect, from_millis, millis, Backend, Db, DbConn};
use crate::{
    Appended, MessageQuery, Messages, NewInbound, OutboundWrites, OutboundWritten, StoreError, StoreResult,
};

/// Our id of the message of a session WhatsApp knows as `wa_id`, sent or received.
async fn quoted(conn: &mut DbConn, session: &SessionId, wa_id: &str) -> StoreResult<Option<MessageId>> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM messages WHERE session_id = $1 AND wa_id = $2 LIMIT 1")
            .bind(session.as_str())
            .bind(wa_id)
            .fetch_optional(conn)
            .await?;
    id.map(|id| MessageId::parse(&id).map_err(|_| corrupt("message id", &id))).transpose()
}

#[async_trait]
impl Messages for Backend {
    async fn write_outbound(
        &self,
        writes: OutboundWrites,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<OutboundWritten> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let now = from_millis(millis(now))?;
        let mut tx = begin(conn).await?;
        let accepted = outbound::accept(&mut tx, writes.accepts, now).await?;
        let statuses = outbound::apply(&mut tx, writes.statuses, now).await?;
        let claimed = outbound::claim(&mut tx, writes.claims, now, lease_until).await?;
        tx.commit().await?;
        Ok(OutboundWritten { accepted, statuses, claimed })
    }

    fn one_writer(&self) -> bool {
        dialect::ONE_WRITER
    }

    /// When each message of a session was sent since `since`, with its recipient (for pacing caps).
    async fn sent_since(
        &self,
        session_id: &SessionId,
        since: Timestamp,
    ) -> StoreResult<Vec<(String, Timestamp)>> {
        let pool = self.readers();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT recipient, sent_at FROM messages WHERE session_id = $1 AND sent_at >= $2 ORDER BY sent_at",
        )
        .bind(session_id.as_str())
        .bind(millis(since))
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(|(to, at)| Ok((to, from_millis(at)?))).collect()
    }

    async fn store_inbound(&self, batch: Vec<NewInbound>, now: Timestamp) -> StoreResult<Vec<Appended>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let now = from_millis(millis(now))?;
        let mut tx = begin(conn).await?;
        // WhatsApp delivers a message again when it was not acknowledged: store each id once.
        let keys = batch.iter().map(|new| (new.session_id.clone(), new.wa_id.clone()));
        let mut seen: HashSet<(SessionId, String)> =
            fetch_by_wa_ids(&mut tx, Direction::In, keys).await?.into_keys().collect();
        let mut rows = Vec::new();
        for new in batch {
            if !seen.insert((new.session_id.clone(), new.wa_id.clone())) {
                continue;
            }
            let context = match new.reply_to {
                Some(wa_id) => Some(ReplyContext {
                    message_id: quoted(&mut tx, &new.session_id, &wa_id).await?,
                    wa_id: Some(wa_id),
                }),
                None => None,
            };
            // A reaction, edit or revoke names its message as wagate does whenever wagate has it.
            let mut content = new.content;
            if let Some(target) = content.target_mut() {
                if let Some(ours) = quoted(&mut tx, &new.session_id, target).await? {
                    *target = ours.to_string();
                }
            }
            let message = Message {
                id: MessageId::generate(),
                session_id: new.session_id,
                direction: Direction::In,
                chat: new.chat,
                from: Some(new.from),
                to: new.to,
                content,
                status: MessageStatus::Received,
                status_reason: None,
                wa_id: Some(new.wa_id),
                scheduled_at: None,
                campaign_id: None,
                next_attempt_at: None,
                context,
                mentions: new.mentions,
                sender: new.sender,
                created_at: from_millis(millis(new.at))?,
                updated_at: now,
                status_history: Vec::new(),
            };
            rows.push((message, None));
        }
        insert_messages(&mut tx, &rows).await?;
        let stored: Vec<&Message> = rows.iter().map(|(m, _)| m).collect();
        contacts::learn_from(&mut tx, &stored, now).await?;
        let mut new_events = Vec::with_capacity(stored.len());
        for message in &stored {
            let data = EventData::MessageReceived(Box::new((*message).clone()));
            new_events.push((Some(message.session_id.clone()), data));
        }
        let events = events::insert_many(&mut tx, new_events, now).await?;
        tx.commit().await?;
        Ok(events)
    }

    async fn cancel_scheduled(&self, id: &MessageId, now: Timestamp) -> StoreResult<(Message, Appended)> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let now = from_millis(millis(now))?;
        let mut tx = begin(conn).await?;
        let mut message =
            fetch_where(&mut tx, "id = $1", &[id.as_str()]).await?.ok_or(StoreError::NotFound("message"))?;
        // Only a message that has not been queued for sending yet can be called back.
        if message.status != MessageStatus::Scheduled {
            return Err(
                wagate_core::IllegalTransition { from: message.status, to: MessageStatus::Canceled }.into()
            );
        }
        message.status = MessageStatus::Canceled;
        message.status_reason = Some("canceled by request".into());
        message.updated_at = now;
        write_statuses(&mut tx, &[&message]).await?;
        let mut events = status_events(&mut tx, &[&message], now).await?;
        tx.commit().await?;
        let event = events.pop().ok_or_else(|| StoreError::Corrupt("no event for a cancel".into()))?;
        Ok((message, event))
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        let pool = self.readers();
        let mut conn = pool.acquire().await?;
        // The events and the row from one snapshot (each status change writes both in one
        // transaction): read apart, the changes committed between the two reads would be
        // missing from the history.
        let mut tx = begin(&mut conn).await?;
        if let Some(snapshot) = dialect::SNAPSHOT {
            sqlx::query(snapshot).execute(&mut *tx).await?;
        }
        let recorded = events::history_of(&mut tx, id).await?;
        let sql = format!("SELECT {SHOWN_COLUMNS} FROM messages WHERE id = $1");
        let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row.as_ref().map(from_row).transpose()?.map(|message| message.with_history(recorded)))
    }

    async fn list_messages(&self, query: MessageQuery) -> StoreResult<Vec<Message>> {
        let pool = self.readers();
        let mut sql =
            QueryBuilder::<Db>::new(format!("SELECT {SHOWN_COLUMNS} FROM messages WHERE session_id = "));
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
}
