//! The audit log.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use wagate_core::{ActorKind, AuditEntry, AuditId, OrgId, Timestamp};

use super::values::execute_rows;
use super::{begin, corrupt, dialect, from_json, from_millis, millis, Backend, Db, DbConn, DbRow};
use crate::{AuditLog, AuditQuery, StoreResult};

fn from_row(row: &DbRow) -> StoreResult<AuditEntry> {
    let kind: String = row.try_get("actor_kind")?;
    let org: Option<String> = row.try_get("org_id")?;
    let status: i64 = row.try_get("status")?;
    Ok(AuditEntry {
        id: Some(AuditId::from_seq(row.try_get("seq")?)),
        at: from_millis(row.try_get("at")?)?,
        request_id: row.try_get("request_id")?,
        actor_kind: ActorKind::parse(&kind).ok_or_else(|| corrupt("actor kind", &kind))?,
        actor_id: row.try_get("actor_id")?,
        org_id: org.map(|o| OrgId::parse(&o).map_err(|_| corrupt("organization id", &o))).transpose()?,
        source: row.try_get("source")?,
        method: row.try_get("method")?,
        route: row.try_get("route")?,
        target: from_json(row.try_get("target")?)?,
        status: u16::try_from(status).map_err(|_| corrupt("status", &status.to_string()))?,
    })
}

#[async_trait]
impl AuditLog for Backend {
    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer().await?;
        let mut tx = begin(&mut writer).await?;
        let sql = format!(
            "INSERT INTO audit_log (at, request_id, actor_kind, actor_id, org_id, source, method, route, target, status) \
             SELECT CAST(r.value ->> 0 AS BIGINT), r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, \
             r.value ->> 5, r.value ->> 6, r.value ->> 7, r.value ->> 8, CAST(r.value ->> 9 AS BIGINT) \
             FROM {} ORDER BY r.n",
            dialect::json_rows("$1")
        );
        execute_rows(&mut tx, &sql, entries, |entry| {
            (
                millis(entry.at),
                entry.request_id.as_deref(),
                entry.actor_kind.as_str(),
                entry.actor_id.as_deref(),
                entry.org_id.as_ref().map(OrgId::as_str),
                entry.source.as_deref(),
                entry.method.as_str(),
                entry.route.as_str(),
                serde_json::to_string(&entry.target).unwrap_or_else(|_| "{}".into()),
                i64::from(entry.status),
            )
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let mut sql = QueryBuilder::<Db>::new(
            "SELECT seq, at, request_id, actor_kind, actor_id, org_id, source, method, route, target, status \
             FROM audit_log WHERE 1 = 1",
        );
        if let Some(org) = &query.org_id {
            sql.push(" AND org_id = ").push_bind(org.as_str());
        }
        if let Some(actor) = &query.actor_id {
            sql.push(" AND actor_id = ").push_bind(actor.as_str());
        }
        if let Some(method) = &query.method {
            sql.push(" AND method = ").push_bind(method.as_str());
        }
        if let Some(route) = &query.route {
            sql.push(" AND route = ").push_bind(route.as_str());
        }
        if let Some(status) = query.status {
            sql.push(" AND status = ").push_bind(i64::from(status));
        }
        if let Some(since) = query.since {
            sql.push(" AND at >= ").push_bind(millis(since));
        }
        if let Some(until) = query.until {
            sql.push(" AND at <= ").push_bind(millis(until));
        }
        if let Some(before) = query.before {
            sql.push(" AND seq < ").push_bind(before.seq());
        }
        sql.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(query.limit));
        let rows = sql.build().fetch_all(self.readers()).await?;
        rows.iter().map(from_row).collect()
    }

    async fn expire_audit(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let deleted = sqlx::query(
            "DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE at < $1 ORDER BY seq LIMIT $2)",
        )
        .bind(millis(before))
        .bind(i64::from(limit))
        .execute(conn)
        .await?;
        Ok(deleted.rows_affected())
    }
}
