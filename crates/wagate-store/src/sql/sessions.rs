//! Sessions and their connection state.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use wagate_core::{
    ConnectorKind, EventData, OrgId, Session, SessionId, SessionStatus, SessionStatusData, Timestamp,
};

use super::secrets::{credentials_row, open_text};
use super::{begin, dialect, events, from_json, from_millis, millis, push_list, Backend, Db, DbConn, DbRow};
use crate::keyring::Keyring;
use crate::{Appended, Credentials, NewSession, SessionChange, Sessions, StoreError, StoreResult};

const COLUMNS: &str = "id, org_id, connector, name, config, metadata, status, status_reason, phone, jid, \
    credentials, credentials_key_id, auto_connect, last_connected_at, created_at, updated_at";

/// A session as stored; its credentials are sealed (`secrets.rs`).
fn from_row(row: &DbRow, keyring: &Keyring) -> StoreResult<Session> {
    let id: String = row.try_get("id")?;
    let key_id: Option<String> = row.try_get("credentials_key_id")?;
    let org_id: String = row.try_get("org_id")?;
    let connector: String = row.try_get("connector")?;
    let status: String = row.try_get("status")?;
    let credentials: Option<String> = row.try_get("credentials")?;
    Ok(Session {
        id: SessionId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        org_id: OrgId::parse(&org_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        connector: ConnectorKind::parse(&connector)
            .ok_or_else(|| StoreError::Corrupt(format!("connector {connector}")))?,
        name: row.try_get("name")?,
        status: SessionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("session status {status}")))?,
        status_reason: row.try_get("status_reason")?,
        phone: row.try_get("phone")?,
        jid: row.try_get("jid")?,
        config: from_json(row.try_get("config")?)?,
        metadata: from_json(row.try_get("metadata")?)?,
        last_connected_at: row
            .try_get::<Option<i64>, _>("last_connected_at")?
            .map(from_millis)
            .transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        credentials: credentials
            .map(|c| open_text(keyring, key_id.as_deref(), c, &credentials_row(&id)))
            .transpose()?
            .as_deref()
            .map(from_json)
            .transpose()?,
        auto_connect: row.try_get("auto_connect")?,
    })
}

pub(super) async fn fetch(
    conn: &mut DbConn,
    keyring: &Keyring,
    id: &SessionId,
) -> StoreResult<Option<Session>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(|row| from_row(row, keyring)).transpose()
}

/// A `session.status` event for the session as it is now, made by `node_id` (if any).
fn status_event(
    session: &Session,
    node_id: Option<String>,
    pairing_code: Option<(String, Timestamp)>,
) -> EventData {
    let (pairing_code, expires_at) = pairing_code.unzip();
    EventData::SessionStatus(SessionStatusData {
        status: session.status,
        reason: session.status_reason.clone(),
        phone: session.phone.clone(),
        jid: session.jid.clone(),
        pairing_code,
        expires_at,
        node_id,
    })
}

#[async_trait]
impl Sessions for Backend {
    async fn find_linked_sessions(
        &self,
        connector: ConnectorKind,
        phones: &[&str],
    ) -> StoreResult<Vec<Session>> {
        let mut sql = QueryBuilder::<Db>::new(format!("SELECT {COLUMNS} FROM sessions WHERE connector = "));
        sql.push_bind(connector.as_str()).push(" AND credentials IS NOT NULL AND phone");
        push_list(&mut sql, phones.iter().copied());
        sql.push(" ORDER BY id");
        let rows = sql.build().fetch_all(self.readers()).await?;
        let mut found: Vec<Session> = Vec::with_capacity(rows.len());
        for row in &rows {
            let session = from_row(row, self.keyring())?;
            if !found.iter().any(|earlier| earlier.phone == session.phone) {
                found.push(session);
            }
        }
        Ok(found)
    }

    async fn create_session(&self, new: NewSession, now: Timestamp) -> StoreResult<(Session, Appended)> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        // Inside the event-ordered transaction, so two creations cannot both take the last place.
        let quota: Option<Option<i64>> = sqlx::query_scalar("SELECT max_sessions FROM orgs WHERE id = $1")
            .bind(new.org_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(quota) = quota else { return Err(StoreError::NotFound("organization")) };
        if let Some(quota) = quota {
            let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE org_id = $1")
                .bind(new.org_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            if held >= quota {
                return Err(StoreError::QuotaExceeded("sessions"));
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, connector, name, config, metadata, status, created_at, updated_at, org_id)
             VALUES ($1, $2, $3, $4, $5, 'created', $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(new.id.as_str())
        .bind(new.connector.as_str())
        .bind(&new.name)
        .bind(new.config.to_string())
        .bind(new.metadata.to_string())
        .bind(millis(now))
        .bind(millis(now))
        .bind(new.org_id.as_str())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict("session"));
        }
        let session =
            fetch(&mut tx, self.keyring(), &new.id).await?.ok_or(StoreError::NotFound("session"))?;
        let event = events::insert(&mut tx, &session.id, status_event(&session, None, None), now).await?;
        tx.commit().await?;
        Ok((session, event))
    }

    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        let pool = self.readers();
        let mut conn = pool.acquire().await?;
        fetch(&mut conn, self.keyring(), id).await
    }

    async fn list_sessions(&self, org: Option<&OrgId>) -> StoreResult<Vec<Session>> {
        let pool = self.readers();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE $1 IS NULL OR org_id = $1 ORDER BY id"
        ))
        .bind(org.map(OrgId::as_str))
        .fetch_all(pool)
        .await?;
        rows.iter().map(|row| from_row(row, self.keyring())).collect()
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        // Its messages go with it (ON DELETE CASCADE); its events stay in the log.
        let deleted =
            sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id.as_str()).execute(conn).await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn update_session(
        &self,
        id: &SessionId,
        change: SessionChange,
        now: Timestamp,
    ) -> StoreResult<(Session, Option<Appended>)> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        // Two changes to one session (its task's, an API call's) apply one after the other.
        sqlx::query(&format!("SELECT id FROM sessions WHERE id = $1{}", dialect::FOR_UPDATE))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let mut session = fetch(&mut tx, self.keyring(), id).await?.ok_or(StoreError::NotFound("session"))?;
        if let Some(lease) = change.lease {
            // The lease stays as read until this change is committed: a node taking the
            // session over waits for it.
            let current: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT token FROM session_leases WHERE session_id = $1{}",
                dialect::FOR_SHARE
            ))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if current != Some(lease) {
                return Err(StoreError::Fenced);
            }
        }
        if let Some(status) = change.status {
            session.status = status;
            session.status_reason = change.reason;
            if status == SessionStatus::Connected {
                session.last_connected_at = Some(from_millis(millis(now))?);
            }
        }
        if let Some(phone) = change.phone {
            session.phone = Some(phone);
        }
        if let Some(jid) = change.jid {
            session.jid = Some(jid);
        }
        match change.credentials {
            Credentials::Keep => {}
            Credentials::Set(value) => session.credentials = Some(value),
            Credentials::Clear => {
                session.credentials = None;
                session.phone = None;
                session.jid = None;
            }
        }
        if let Some(auto) = change.auto_connect {
            session.auto_connect = auto;
        }
        session.updated_at = from_millis(millis(now))?;
        let sealed = session
            .credentials
            .as_ref()
            .map(|c| self.keyring().seal(c.to_string().as_bytes(), &credentials_row(id.as_str())));
        sqlx::query(
            "UPDATE sessions SET status = $1, status_reason = $2, phone = $3, jid = $4, credentials = $5,
             credentials_key_id = $6, auto_connect = $7, last_connected_at = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(session.status.as_str())
        .bind(&session.status_reason)
        .bind(&session.phone)
        .bind(&session.jid)
        .bind(sealed.as_ref().map(|s| s.to_text()))
        .bind(sealed.as_ref().map(|s| s.key_id.as_str().to_owned()))
        .bind(session.auto_connect)
        .bind(session.last_connected_at.map(millis))
        .bind(millis(now))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        let event = match change.status {
            Some(_) => Some(
                events::insert(&mut tx, id, status_event(&session, change.node_id, change.pairing_code), now)
                    .await?,
            ),
            None => None,
        };
        tx.commit().await?;
        Ok((session, event))
    }
}
