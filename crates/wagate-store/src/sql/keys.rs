//! API keys.

use async_trait::async_trait;
use sqlx::Row;
use wagate_core::{ApiKey, KeyId, OrgId, Scope, SessionId, Timestamp};

use super::{begin, corrupt, from_json, from_millis, millis, Backend, DbConn, DbRow};
use crate::{ApiKeys, StoreError, StoreResult};

const COLUMNS: &str = "id, org_id, name, scopes, sessions, created_at, expires_at, last_used_at, revoked_at";

fn from_row(row: &DbRow) -> StoreResult<ApiKey> {
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("org_id")?;
    let scopes: Vec<String> = from_json(row.try_get("scopes")?)?;
    let sessions: Option<String> = row.try_get("sessions")?;
    let time = |column: &str| -> StoreResult<Option<Timestamp>> {
        row.try_get::<Option<i64>, _>(column)?.map(from_millis).transpose()
    };
    Ok(ApiKey {
        id: KeyId::parse(&id).map_err(|_| corrupt("key id", &id))?,
        org_id: OrgId::parse(&org).map_err(|_| corrupt("organization id", &org))?,
        name: row.try_get("name")?,
        scopes: scopes
            .iter()
            .map(|s| Scope::parse(s).ok_or_else(|| corrupt("scope", s)))
            .collect::<StoreResult<_>>()?,
        sessions: sessions
            .as_deref()
            .map(|text| {
                let ids: Vec<String> = from_json(text)?;
                ids.iter()
                    .map(|s| SessionId::parse(s).map_err(|_| corrupt("session id", s)))
                    .collect::<StoreResult<Vec<_>>>()
            })
            .transpose()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        expires_at: time("expires_at")?,
        last_used_at: time("last_used_at")?,
        revoked_at: time("revoked_at")?,
    })
}

async fn fetch(conn: &mut DbConn, id: &KeyId) -> StoreResult<Option<ApiKey>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

#[async_trait]
impl ApiKeys for Backend {
    async fn create_key(&self, key: &ApiKey, secret_hash: &str) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let sessions = key.sessions.as_ref().map(|ids| {
            serde_json::Value::from(ids.iter().map(SessionId::as_str).collect::<Vec<_>>()).to_string()
        });
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, org_id, name, scopes, sessions, secret_hash, created_at, expires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM orgs WHERE id = $2)",
        )
        .bind(key.id.as_str())
        .bind(key.org_id.as_str())
        .bind(&key.name)
        .bind(serde_json::Value::from(scopes).to_string())
        .bind(sessions)
        .bind(secret_hash)
        .bind(millis(key.created_at))
        .bind(key.expires_at.map(millis))
        .execute(conn)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound("organization"));
        }
        Ok(())
    }

    async fn find_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1"))
            .bind(secret_hash)
            .fetch_optional(self.readers())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn get_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        let mut conn = self.readers().acquire().await?;
        fetch(&mut conn, id).await
    }

    async fn list_keys(&self, org: Option<&OrgId>) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE $1 IS NULL OR org_id = $1 ORDER BY id DESC"
        ))
        .bind(org.map(OrgId::as_str))
        .fetch_all(self.readers())
        .await?;
        rows.iter().map(from_row).collect()
    }

    async fn revoke_key(&self, id: &KeyId, now: Timestamp) -> StoreResult<Option<ApiKey>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(millis(now))
            .bind(id.as_str())
            .execute(&mut *conn)
            .await?;
        fetch(conn, id).await
    }

    async fn record_key_use(&self, uses: &[(KeyId, Timestamp)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer().await?;
        let mut tx = begin(&mut writer).await?;
        for (id, at) in uses {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(millis(*at))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
