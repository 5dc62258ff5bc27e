//! Message templates, and the trigger hooks that send them.

use async_trait::async_trait;
use sqlx::Row;
use wagate_core::{Hook, HookId, MessageContent, OrgId, SessionId, Template, Timestamp};

use super::{corrupt, from_json, from_millis, millis, Backend, DbConn, DbRow};
use crate::{NewHook, StoreError, StoreResult, TemplateChange, Templates};

const COLUMNS: &str = "name, language, content, created_at, updated_at";

fn params(content: &MessageContent) -> Vec<String> {
    content.template_params().into_iter().collect()
}

fn from_row(row: &DbRow) -> StoreResult<Template> {
    let content: MessageContent = from_json(row.try_get("content")?)?;
    Ok(Template {
        name: row.try_get("name")?,
        language: row.try_get("language")?,
        params: params(&content),
        content,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

fn content_json(content: &MessageContent) -> StoreResult<String> {
    serde_json::to_string(content).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const HOOK_COLUMNS: &str = "id, session_id, recipients, template, description, created_at, last_used_at";

fn hook_from_row(row: &DbRow) -> StoreResult<Hook> {
    let id: String = row.try_get("id")?;
    let session: String = row.try_get("session_id")?;
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    Ok(Hook {
        id: HookId::parse(&id).map_err(|_| corrupt("hook id", &id))?,
        session_id: SessionId::parse(&session).map_err(|_| corrupt("session id", &session))?,
        to: from_json(row.try_get("recipients")?)?,
        template: row.try_get("template")?,
        description: row.try_get("description")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        last_used_at: last_used.map(from_millis).transpose()?,
    })
}

#[async_trait]
impl Templates for Backend {
    async fn create_template(
        &self,
        org: &OrgId,
        name: String,
        language: Option<String>,
        content: MessageContent,
        now: Timestamp,
    ) -> StoreResult<Template> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let now = from_millis(millis(now))?;
        let done = sqlx::query(
            "INSERT INTO templates (name, language, content, created_at, updated_at, org_id) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, name) DO NOTHING",
        )
        .bind(&name)
        .bind(&language)
        .bind(content_json(&content)?)
        .bind(millis(now))
        .bind(millis(now))
        .bind(org.as_str())
        .execute(conn)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("template"));
        }
        Ok(Template { name, language, params: params(&content), content, created_at: now, updated_at: now })
    }

    async fn get_template(&self, org: &OrgId, name: &str) -> StoreResult<Option<Template>> {
        let pool = self.readers();
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM templates WHERE org_id = $1 AND name = $2"))
            .bind(org.as_str())
            .bind(name)
            .fetch_optional(pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn list_templates(&self, org: &OrgId) -> StoreResult<Vec<Template>> {
        let pool = self.readers();
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM templates WHERE org_id = $1 ORDER BY name"))
            .bind(org.as_str())
            .fetch_all(pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn update_template(
        &self,
        org: &OrgId,
        name: &str,
        change: TemplateChange,
        now: Timestamp,
    ) -> StoreResult<Option<Template>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let content = change.content.as_ref().map(content_json).transpose()?;
        let row = sqlx::query(&format!(
            "UPDATE templates SET content = COALESCE($1, content), \
             language = CASE WHEN $2 THEN $3 ELSE language END, updated_at = $4 \
             WHERE name = $5 AND org_id = $6 RETURNING {COLUMNS}"
        ))
        .bind(content)
        .bind(change.language.is_some())
        .bind(change.language.flatten())
        .bind(millis(now))
        .bind(name)
        .bind(org.as_str())
        .fetch_optional(conn)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn delete_template(&self, org: &OrgId, name: &str) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let done = sqlx::query("DELETE FROM templates WHERE org_id = $1 AND name = $2")
            .bind(org.as_str())
            .bind(name)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_hook(&self, new: NewHook, now: Timestamp) -> StoreResult<Hook> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let now = from_millis(millis(now))?;
        let hook = Hook {
            id: HookId::generate(),
            session_id: new.session_id,
            to: new.to,
            template: new.template,
            description: new.description,
            created_at: now,
            last_used_at: None,
        };
        let done = sqlx::query(
            "INSERT INTO hooks (id, session_id, token_hash, recipients, template, description, created_at) \
             SELECT $1, id, $2, $3, $4, $5, $6 FROM sessions WHERE id = $7",
        )
        .bind(hook.id.as_str())
        .bind(&new.token_hash)
        .bind(serde_json::Value::from(hook.to.clone()).to_string())
        .bind(&hook.template)
        .bind(&hook.description)
        .bind(millis(now))
        .bind(hook.session_id.as_str())
        .execute(conn)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("session"));
        }
        Ok(hook)
    }

    async fn list_hooks(&self, session: &SessionId) -> StoreResult<Vec<Hook>> {
        let pool = self.readers();
        let rows =
            sqlx::query(&format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE session_id = $1 ORDER BY id"))
                .bind(session.as_str())
                .fetch_all(pool)
                .await?;
        rows.iter().map(hook_from_row).collect()
    }

    async fn delete_hook(&self, session: &SessionId, id: &HookId) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let done = sqlx::query("DELETE FROM hooks WHERE session_id = $1 AND id = $2")
            .bind(session.as_str())
            .bind(id.as_str())
            .execute(conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn use_hook(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Hook>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let row = sqlx::query(&format!(
            "UPDATE hooks SET last_used_at = $1 WHERE token_hash = $2 RETURNING {HOOK_COLUMNS}"
        ))
        .bind(millis(now))
        .bind(token_hash)
        .fetch_optional(conn)
        .await?;
        row.as_ref().map(hook_from_row).transpose()
    }
}
