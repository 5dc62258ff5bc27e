//! What is kept of media files (the bytes are in the media store).

use async_trait::async_trait;
use sqlx::Row;
use wagate_core::{Media, MediaId, OrgId, Timestamp};

use super::{corrupt, from_millis, millis, Backend, DbConn};
use crate::{MediaRecords, StoreResult};

#[async_trait]
impl MediaRecords for Backend {
    async fn create_media(&self, media: &Media) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        sqlx::query(
            "INSERT INTO media (id, mime_type, size, sha256, filename, created_at, org_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(media.id.as_str())
        .bind(&media.mime_type)
        .bind(i64::try_from(media.size).unwrap_or(i64::MAX))
        .bind(&media.sha256)
        .bind(&media.filename)
        .bind(millis(media.created_at))
        .bind(media.org_id.as_str())
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>> {
        let pool = self.readers();
        let row = sqlx::query(
            "SELECT id, org_id, mime_type, size, sha256, filename, created_at FROM media WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let org: String = row.try_get("org_id")?;
        Ok(Some(Media {
            id: MediaId::parse(&id).map_err(|_| corrupt("media id", &id))?,
            org_id: OrgId::parse(&org).map_err(|_| corrupt("organization id", &org))?,
            mime_type: row.try_get("mime_type")?,
            size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
            sha256: row.try_get("sha256")?,
            filename: row.try_get("filename")?,
            created_at: from_millis(row.try_get("created_at")?)?,
        }))
    }

    async fn expire_media(&self, before: Timestamp, limit: u32) -> StoreResult<Vec<MediaId>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM media WHERE id IN (SELECT id FROM media WHERE created_at < $1 ORDER BY created_at LIMIT $2) \
             RETURNING id",
        )
        .bind(millis(before))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
        ids.iter().map(|id| MediaId::parse(id).map_err(|_| corrupt("media id", id))).collect()
    }
}
