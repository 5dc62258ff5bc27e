//! Message templates.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};
use wagate_core::{template, MessageContent, Template, Timestamp};

use super::{from_json, from_millis, millis};
use crate::{StoreError, StoreResult, TemplateChange};

const COLUMNS: &str = "name, language, content, created_at, updated_at";

fn params(content: &MessageContent) -> Vec<String> {
    let mut names: Vec<String> =
        content.template_texts().into_iter().flat_map(template::placeholders).collect();
    names.sort();
    names.dedup();
    names
}

fn from_row(row: &SqliteRow) -> StoreResult<Template> {
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

pub(super) async fn create(
    conn: &mut SqliteConnection,
    name: String,
    language: Option<String>,
    content: MessageContent,
    now: Timestamp,
) -> StoreResult<Template> {
    let now = from_millis(millis(now))?;
    let done = sqlx::query(
        "INSERT INTO templates (name, language, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&name)
    .bind(&language)
    .bind(content_json(&content)?)
    .bind(millis(now))
    .bind(millis(now))
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict("template"));
    }
    Ok(Template { name, language, params: params(&content), content, created_at: now, updated_at: now })
}

pub(super) async fn get(pool: &SqlitePool, name: &str) -> StoreResult<Option<Template>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM templates WHERE name = ?"))
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool) -> StoreResult<Vec<Template>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM templates ORDER BY name")).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn update(
    conn: &mut SqliteConnection,
    name: &str,
    change: TemplateChange,
    now: Timestamp,
) -> StoreResult<Option<Template>> {
    let content = change.content.as_ref().map(content_json).transpose()?;
    let row = sqlx::query(&format!(
        "UPDATE templates SET content = COALESCE(?1, content), \
         language = CASE WHEN ?2 THEN ?3 ELSE language END, updated_at = ?4 \
         WHERE name = ?5 RETURNING {COLUMNS}"
    ))
    .bind(content)
    .bind(change.language.is_some())
    .bind(change.language.flatten())
    .bind(millis(now))
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn delete(conn: &mut SqliteConnection, name: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM templates WHERE name = ?").bind(name).execute(conn).await?;
    Ok(done.rows_affected() > 0)
}
