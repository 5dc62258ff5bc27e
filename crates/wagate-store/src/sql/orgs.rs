//! Organizations.

use async_trait::async_trait;
use sqlx::Row;
use wagate_core::{Org, OrgId, Quotas, Timestamp};

use super::{corrupt, from_millis, millis, Backend, DbConn, DbRow};
use crate::{OrgChange, Orgs, StoreError, StoreResult};

const COLUMNS: &str = "id, name, max_sessions, max_messages_per_day, created_at, updated_at";

fn from_row(row: &DbRow) -> StoreResult<Org> {
    let id: String = row.try_get("id")?;
    let quota = |column: &str| -> StoreResult<Option<u32>> {
        row.try_get::<Option<i64>, _>(column)?
            .map(|n| u32::try_from(n).map_err(|_| corrupt(column, &n.to_string())))
            .transpose()
    };
    Ok(Org {
        id: OrgId::parse(&id).map_err(|_| corrupt("organization id", &id))?,
        name: row.try_get("name")?,
        quotas: Quotas { sessions: quota("max_sessions")?, messages_per_day: quota("max_messages_per_day")? },
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

async fn fetch(conn: &mut DbConn, id: &OrgId) -> StoreResult<Option<Org>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orgs WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

#[async_trait]
impl Orgs for Backend {
    async fn create_org(&self, id: OrgId, name: String, quotas: Quotas, now: Timestamp) -> StoreResult<Org> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let inserted = sqlx::query(
            "INSERT INTO orgs (id, name, max_sessions, max_messages_per_day, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(&name)
        .bind(quotas.sessions.map(i64::from))
        .bind(quotas.messages_per_day.map(i64::from))
        .bind(millis(now))
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict("organization"));
        }
        fetch(conn, &id).await?.ok_or(StoreError::NotFound("organization"))
    }

    async fn get_org(&self, id: &OrgId) -> StoreResult<Option<Org>> {
        let mut conn = self.readers().acquire().await?;
        fetch(&mut conn, id).await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM orgs ORDER BY id")).fetch_all(self.readers()).await?;
        rows.iter().map(from_row).collect()
    }

    async fn update_org(&self, id: &OrgId, change: OrgChange, now: Timestamp) -> StoreResult<Option<Org>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let Some(mut org) = fetch(conn, id).await? else { return Ok(None) };
        if let Some(name) = change.name {
            org.name = name;
        }
        if let Some(quotas) = change.quotas {
            org.quotas = quotas;
        }
        sqlx::query(
            "UPDATE orgs SET name = $1, max_sessions = $2, max_messages_per_day = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(&org.name)
        .bind(org.quotas.sessions.map(i64::from))
        .bind(org.quotas.messages_per_day.map(i64::from))
        .bind(millis(now))
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
        fetch(conn, id).await
    }

    async fn delete_org(&self, id: &OrgId) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let mut tx = super::begin(&mut writer).await?;
        let held: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM sessions WHERE org_id = $1) + (SELECT COUNT(*) FROM webhooks WHERE org_id = $1) \
             + (SELECT COUNT(*) FROM templates WHERE org_id = $1) + (SELECT COUNT(*) FROM media WHERE org_id = $1)",
        )
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if held > 0 {
            return Err(StoreError::Conflict("organization"));
        }
        sqlx::query("DELETE FROM api_keys WHERE org_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        let deleted =
            sqlx::query("DELETE FROM orgs WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn count_sent_since(&self, org: &OrgId, since: Timestamp) -> StoreResult<u64> {
        // Message ids are ULIDs, so `created_at` is also the order of `messages_by_session`.
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages m JOIN sessions s ON s.id = m.session_id \
             WHERE s.org_id = $1 AND m.direction = 'out' AND m.created_at >= $2",
        )
        .bind(org.as_str())
        .bind(millis(since))
        .fetch_one(self.readers())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
