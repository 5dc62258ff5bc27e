//! Who a session knows (contacts) and the conversations it has (chats).

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use wagate_core::{Chat, Contact, Direction, Message, SessionId, Timestamp};

use super::{begin, from_millis, millis, Backend, Db, DbConn};
use crate::{Contacts, StoreResult};

/// Rows per statement: 7 bound values each.
const ROWS_PER_STATEMENT: usize = 500;

pub(super) async fn save_contacts(
    conn: &mut DbConn,
    session: &SessionId,
    contacts: &[Contact],
) -> StoreResult<()> {
    // A JID given twice in one statement would touch its row twice (PostgreSQL refuses).
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(contacts.len());
    let mut unique: Vec<Contact> = Vec::with_capacity(contacts.len());
    for contact in contacts {
        match index.get(contact.jid.as_str()) {
            Some(&i) => {
                let known = &mut unique[i];
                known.phone = contact.phone.clone().or(known.phone.take());
                known.lid = contact.lid.clone().or(known.lid.take());
                known.name = contact.name.clone().or(known.name.take());
                known.push_name = contact.push_name.clone().or(known.push_name.take());
            }
            None => {
                index.insert(&contact.jid, unique.len());
                unique.push(contact.clone());
            }
        }
    }
    for chunk in unique.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Db>::new(
            "INSERT INTO contacts (session_id, jid, phone, lid, name, push_name, updated_at) ",
        );
        sql.push_values(chunk, |mut row, contact| {
            row.push_bind(session.as_str())
                .push_bind(contact.jid.as_str())
                .push_bind(contact.phone.as_deref())
                .push_bind(contact.lid.as_deref())
                .push_bind(contact.name.as_deref())
                .push_bind(contact.push_name.as_deref())
                .push_bind(millis(contact.updated_at));
        });
        sql.push(
            " ON CONFLICT (session_id, jid) DO UPDATE SET \
             phone = COALESCE(excluded.phone, contacts.phone), lid = COALESCE(excluded.lid, contacts.lid), \
             name = COALESCE(excluded.name, contacts.name), \
             push_name = COALESCE(excluded.push_name, contacts.push_name), updated_at = excluded.updated_at",
        );
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn save_chats(conn: &mut DbConn, session: &SessionId, chats: &[Chat]) -> StoreResult<()> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(chats.len());
    let mut unique: Vec<Chat> = Vec::with_capacity(chats.len());
    for chat in chats {
        match index.get(chat.jid.as_str()) {
            Some(&i) => {
                let known = &mut unique[i];
                known.name = chat.name.clone().or(known.name.take());
                known.last_message_at = known.last_message_at.max(chat.last_message_at);
            }
            None => {
                index.insert(&chat.jid, unique.len());
                unique.push(chat.clone());
            }
        }
    }
    for chunk in unique.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Db>::new(
            "INSERT INTO chats (session_id, jid, name, is_group, last_message_at, updated_at) ",
        );
        sql.push_values(chunk, |mut row, chat| {
            row.push_bind(session.as_str())
                .push_bind(chat.jid.as_str())
                .push_bind(chat.name.as_deref())
                .push_bind(chat.is_group)
                .push_bind(chat.last_message_at.map(millis))
                .push_bind(millis(chat.updated_at));
        });
        sql.push(
            " ON CONFLICT (session_id, jid) DO UPDATE SET name = COALESCE(excluded.name, chats.name), \
             last_message_at = CASE WHEN chats.last_message_at IS NULL \
               OR excluded.last_message_at > chats.last_message_at \
               THEN excluded.last_message_at ELSE chats.last_message_at END, \
             updated_at = excluded.updated_at",
        );
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// What inbound messages teach: their chats, and their authors as contacts.
pub(super) async fn learn_from(conn: &mut DbConn, messages: &[&Message], now: Timestamp) -> StoreResult<()> {
    let mut by_session: Vec<(&SessionId, Vec<Contact>, Vec<Chat>)> = Vec::new();
    for message in messages.iter().filter(|m| m.direction == Direction::In) {
        let index = match by_session.iter().position(|(s, _, _)| *s == &message.session_id) {
            Some(i) => i,
            None => {
                by_session.push((&message.session_id, Vec::new(), Vec::new()));
                by_session.len() - 1
            }
        };
        let (_, contacts, chats) = &mut by_session[index];
        chats.push(Chat {
            jid: message.chat.clone(),
            name: None,
            is_group: message.chat.ends_with("@g.us"),
            last_message_at: Some(message.created_at),
            updated_at: now,
        });
        if let Some(from) = &message.from {
            let sender = message.sender.clone().unwrap_or_default();
            contacts.push(Contact {
                jid: from.clone(),
                phone: from.strip_suffix("@s.whatsapp.net").map(str::to_owned),
                lid: sender.lid.or_else(|| from.ends_with("@lid").then(|| from.clone())),
                name: None,
                push_name: sender.push_name,
                updated_at: now,
            });
        }
    }
    for (session, contacts, chats) in by_session {
        save_contacts(conn, session, &contacts).await?;
        save_chats(conn, session, &chats).await?;
    }
    Ok(())
}

#[async_trait]
impl Contacts for Backend {
    async fn list_contacts(
        &self,
        session: &SessionId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Contact>> {
        let pool = self.readers();
        let rows = sqlx::query(
            "SELECT jid, phone, lid, name, push_name, updated_at FROM contacts \
             WHERE session_id = $1 AND jid > $2 ORDER BY jid LIMIT $3",
        )
        .bind(session.as_str())
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Contact {
                    jid: row.try_get("jid")?,
                    phone: row.try_get("phone")?,
                    lid: row.try_get("lid")?,
                    name: row.try_get("name")?,
                    push_name: row.try_get("push_name")?,
                    updated_at: from_millis(row.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    async fn list_chats(&self, session: &SessionId, offset: u32, limit: u32) -> StoreResult<Vec<Chat>> {
        let pool = self.readers();
        let rows = sqlx::query(
            "SELECT jid, name, is_group, last_message_at, updated_at FROM chats WHERE session_id = $1 \
             ORDER BY last_message_at DESC NULLS LAST, jid LIMIT $2 OFFSET $3",
        )
        .bind(session.as_str())
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Chat {
                    jid: row.try_get("jid")?,
                    name: row.try_get("name")?,
                    is_group: row.try_get("is_group")?,
                    last_message_at: row
                        .try_get::<Option<i64>, _>("last_message_at")?
                        .map(from_millis)
                        .transpose()?,
                    updated_at: from_millis(row.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    async fn save_contacts(&self, session: &SessionId, contacts: Vec<Contact>) -> StoreResult<()> {
        let mut conn = self.writer().await?;
        let mut tx = begin(&mut conn).await?;
        save_contacts(&mut tx, session, &contacts).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn save_chats(&self, session: &SessionId, chats: Vec<Chat>) -> StoreResult<()> {
        let mut conn = self.writer().await?;
        let mut tx = begin(&mut conn).await?;
        save_chats(&mut tx, session, &chats).await?;
        tx.commit().await?;
        Ok(())
    }
}
