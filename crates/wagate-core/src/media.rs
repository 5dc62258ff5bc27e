//! Media files (images, video, audio, documents, stickers): what is stored of them, and the
//! rules WhatsApp sets on each kind of media message.

use serde::{Deserialize, Serialize};

use crate::MediaId;

/// A stored media file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Media {
    pub id: MediaId,
    /// The organization that uploaded it; only its sessions may send it.
    pub org_id: crate::OrgId,
    /// Sniffed from the bytes, not taken from the uploader.
    pub mime_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The kinds of media message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    pub const ALL: [MediaKind; 5] =
        [MediaKind::Image, MediaKind::Video, MediaKind::Audio, MediaKind::Document, MediaKind::Sticker];

    /// Its name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// The MIME types WhatsApp takes for this kind; None takes any (documents).
    pub fn mime_types(self) -> Option<&'static [&'static str]> {
        match self {
            MediaKind::Image => Some(&["image/jpeg", "image/png"]),
            MediaKind::Video => Some(&["video/mp4", "video/3gpp"]),
            MediaKind::Audio => Some(&["audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg"]),
            MediaKind::Document => None,
            MediaKind::Sticker => Some(&["image/webp"]),
        }
    }

    /// Whether a message of this kind may have a caption.
    pub fn has_caption(self) -> bool {
        matches!(self, MediaKind::Image | MediaKind::Video | MediaKind::Document)
    }

    /// Checks a file against this kind's type rule and `max_bytes`; the error says which rule.
    pub fn check(self, media: &Media, max_bytes: u64) -> Result<(), String> {
        if let Some(allowed) = self.mime_types() {
            if !allowed.contains(&media.mime_type.as_str()) {
                return Err(format!(
                    "{} must be {} (this file is {})",
                    self.as_str(),
                    allowed.join(", "),
                    media.mime_type
                ));
            }
        }
        if media.size > max_bytes {
            return Err(format!(
                "{} must be at most {max_bytes} bytes (this file is {})",
                self.as_str(),
                media.size
            ));
        }
        Ok(())
    }
}

/// The media of a media message, as stored and shown: the file, and what goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MediaContent {
    /// The stored file (`GET /v1/media/{id}`).
    pub id: MediaId,
    pub mime_type: String,
    pub size: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// The file name a document shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// An audio message recorded as a push-to-talk voice note.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub voice: bool,
}

impl MediaContent {
    /// The content of a message that sends `media`.
    pub fn of(media: &Media, caption: Option<String>, filename: Option<String>, voice: bool) -> Self {
        MediaContent {
            id: media.id.clone(),
            mime_type: media.mime_type.clone(),
            size: media.size,
            sha256: media.sha256.clone(),
            caption,
            filename: filename.or_else(|| media.filename.clone()),
            voice,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mime_type: &str, size: u64) -> Media {
        Media {
            id: MediaId::generate(),
            org_id: crate::OrgId::default_org(),
            mime_type: mime_type.into(),
            size,
            sha256: String::new(),
            filename: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn each_kind_takes_its_types_up_to_its_size() {
        assert!(MediaKind::Image.check(&file("image/png", 10), 100).is_ok());
        let wrong = MediaKind::Image.check(&file("application/pdf", 10), 100).unwrap_err();
        assert!(wrong.contains("image/jpeg, image/png") && wrong.contains("application/pdf"), "{wrong}");
        let big = MediaKind::Image.check(&file("image/png", 101), 100).unwrap_err();
        assert!(big.contains("at most 100 bytes"), "{big}");
        assert!(MediaKind::Document.check(&file("application/x-anything", 10), 100).is_ok());
        assert!(MediaKind::Sticker.check(&file("image/png", 10), 100).is_err());
    }
}
