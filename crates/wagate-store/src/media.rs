//! What is kept of media files; their bytes live in the media store, outside the database.

use async_trait::async_trait;
use wagate_core::{Media, MediaId, Timestamp};

use crate::StoreResult;

/// Media file records.
#[async_trait]
pub trait MediaRecords: Send + Sync {
    /// Records a media file whose bytes are stored.
    async fn create_media(&self, media: &Media) -> StoreResult<()>;
    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>>;
    /// Forgets up to `limit` media files stored before `before`; answers their ids, so that
    /// their bytes can be deleted.
    async fn expire_media(&self, before: Timestamp, limit: u32) -> StoreResult<Vec<MediaId>>;
}
