//! The media store: files streamed into an object store (a local directory by default)
//! while they are hashed and measured, their type sniffed from the first bytes, and a row
//! recorded once the bytes are safely written.

use std::ops::Range;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use wagate_core::{Media, MediaId, MediaKind, OrgId, SessionId, Timestamp};
use wagate_store::{Store, StoreError};

use crate::config::{Config, MediaConfig, MediaLocation};
use crate::webhooks::targets::{self, TargetError};

/// How many leading bytes the type is sniffed from.
const SNIFF_BYTES: usize = 8192;

/// Why a file was not stored or cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MediaError {
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the file is empty")]
    Empty,
    #[error("reading the upload failed: {0}")]
    Upload(String),
    #[error("media storage failed: {0}")]
    Storage(#[from] object_store::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) struct MediaStore {
    objects: Arc<dyn ObjectStore>,
    /// Where in the object store files go (`s3://bucket/<prefix>`).
    prefix: String,
    /// Signs download URLs, when media is on S3 and `media.presigned_downloads` is set.
    signer: Option<Arc<dyn Signer>>,
    store: Arc<dyn Store>,
    limits: MediaConfig,
    /// Downloads `link`s: public addresses only unless configured otherwise.
    http: reqwest::Client,
}

/// Why a `link` could not be stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("downloading it failed: {0}")]
    Download(String),
    #[error("it answered HTTP {0}")]
    Status(u16),
    #[error(transparent)]
    Media(#[from] MediaError),
}

impl MediaStore {
    /// The media store `config.media_url` names: a directory (created if missing) or S3.
    pub(crate) fn open(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let limits = config.media.clone();
        let (objects, prefix, signer): (Arc<dyn ObjectStore>, String, Option<Arc<dyn Signer>>) = match config
            .media_location()
        {
            MediaLocation::Directory(dir) => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create the media directory {}", dir.display()))?;
                (Arc::new(LocalFileSystem::new_with_prefix(&dir)?), String::new(), None)
            }
            MediaLocation::S3 { bucket, prefix } => {
                let mut s3 =
                    AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&limits.s3_region);
                if let Some(endpoint) = &limits.s3_endpoint {
                    s3 = s3.with_endpoint(endpoint).with_allow_http(limits.s3_allow_http);
                }
                if let (Some(key), Some(secret)) = (&limits.s3_access_key_id, &limits.s3_secret_access_key) {
                    s3 = s3.with_access_key_id(key).with_secret_access_key(secret.expose_secret());
                }
                let s3 = Arc::new(s3.build().context("cannot set up the S3 media store")?);
                let signer = limits.presigned_downloads.then(|| Arc::clone(&s3) as Arc<dyn Signer>);
                (s3, prefix, signer)
            }
            MediaLocation::Unsupported(url) => anyhow::bail!("media_url {url:?} is not supported"),
        };
        let allow_private = limits.allow_private_links;
        let mut http = reqwest::Client::builder()
            .timeout(crate::config::ms(limits.download_timeout_ms))
            // A redirect to an address literal would skip the resolver's check.
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if !allow_private && targets::names_private_ip(attempt.url().as_str()) {
                    attempt.error("redirected to a private address")
                } else {
                    attempt.follow()
                }
            }));
        if !allow_private {
            http = http.dns_resolver(Arc::new(targets::PublicOnly));
        }
        Ok(Self { objects, prefix, signer, store, limits, http: http.build()? })
    }

    /// Where a file's bytes are in the object store.
    fn path(&self, id: &MediaId) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(id.as_str())
        } else {
            ObjectPath::from(format!("{}/{}", self.prefix, id.as_str()))
        }
    }

    /// A URL to download a file from directly, when downloads are presigned.
    pub(crate) async fn presigned_url(&self, media: &Media) -> Result<Option<url::Url>, MediaError> {
        let Some(signer) = &self.signer else { return Ok(None) };
        let expiry = crate::config::ms(self.limits.presigned_expiry_ms);
        Ok(Some(signer.signed_url(axum::http::Method::GET, &self.path(&media.id), expiry).await?))
    }

    /// Downloads a `link` into the store.
    pub(crate) async fn save_link(
        &self,
        org: &OrgId,
        link: &str,
        filename: Option<String>,
        now: Timestamp,
    ) -> Result<Media, LinkError> {
        let url = targets::check_url(link, self.limits.allow_private_links).await?;
        if url.scheme() != "https" && !self.limits.allow_private_links {
            return Err(TargetError::Invalid("must be an https URL".into()).into());
        }
        // The file's name is the link's last path segment unless one was given.
        let filename = filename.or_else(|| {
            url.path_segments().and_then(|mut s| s.next_back()).filter(|s| !s.is_empty()).map(str::to_owned)
        });
        let response = self.http.get(url).send().await.map_err(|e| LinkError::Download(e.to_string()))?;
        if !response.status().is_success() {
            return Err(LinkError::Status(response.status().as_u16()));
        }
        Ok(self.save(org, response.bytes_stream(), filename, now).await?)
    }

    /// The largest file any kind of media message takes: the most an upload may be.
    pub(crate) fn max_upload(&self) -> u64 {
        MediaKind::ALL.into_iter().map(|kind| self.limits.max_bytes(kind)).max().unwrap_or(0)
    }

    pub(crate) fn max_bytes(&self, kind: MediaKind) -> u64 {
        self.limits.max_bytes(kind)
    }

    pub(crate) async fn get(&self, id: &MediaId) -> Result<Option<Media>, StoreError> {
        self.store.get_media(id).await
    }

    /// Streams `body` into the store, hashing it on the way, and records it; the bytes are
    /// written before the row, so a recorded file always has its bytes.
    pub(crate) async fn save<S, E>(
        &self,
        org: &OrgId,
        body: S,
        filename: Option<String>,
        now: Timestamp,
    ) -> Result<Media, MediaError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let id = MediaId::generate();
        let path = self.path(&id);
        let max = self.max_upload();
        let mut writer = BufWriter::new(Arc::clone(&self.objects), path.clone());
        let mut hasher = Sha256::new();
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        let written: Result<(), MediaError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| MediaError::Upload(e.to_string()))?;
                size += chunk.len() as u64;
                if size > max {
                    return Err(MediaError::TooLarge(max));
                }
                if head.len() < SNIFF_BYTES {
                    let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                hasher.update(&chunk);
                writer.write_all(&chunk).await.map_err(|e| MediaError::Upload(e.to_string()))?;
            }
            if size == 0 {
                return Err(MediaError::Empty);
            }
            writer.shutdown().await.map_err(|e| MediaError::Upload(e.to_string()))?;
            Ok(())
        }
        .await;
        if let Err(e) = written {
            let _ = writer.abort().await;
            let _ = self.objects.delete(&path).await;
            return Err(e);
        }
        let media = Media {
            id,
            org_id: org.clone(),
            mime_type: sniff(&head),
            size,
            sha256: format!("{:x}", hasher.finalize()),
            filename: filename.filter(|f| !f.trim().is_empty()),
            created_at: now,
        };
        if let Err(e) = self.store.create_media(&media).await {
            let _ = self.objects.delete(&path).await;
            return Err(e.into());
        }
        Ok(media)
    }

    /// The bytes of a stored file, or of `range` of them.
    pub(crate) async fn read(
        &self,
        media: &Media,
        range: Option<Range<u64>>,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>> + use<>, MediaError> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let found = self.objects.get_opts(&self.path(&media.id), options).await?;
        Ok(found.into_stream())
    }
}

impl MediaStore {
    /// Deletes the files older than `media.retention_ms`, in rounds: the rows first (so no
    /// recorded file lacks its bytes), then the bytes.
    pub(crate) async fn expire(&self, now: Timestamp) -> Result<usize, MediaError> {
        const ROUND: u32 = 500;
        let keep =
            chrono::Duration::milliseconds(i64::try_from(self.limits.retention_ms).unwrap_or(i64::MAX));
        let mut deleted = 0;
        loop {
            let ids = self.store.expire_media(now - keep, ROUND).await?;
            for id in &ids {
                match self.objects.delete(&self.path(id)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(media_id = %id, error = %e, "could not delete an expired file's bytes")
                    }
                }
            }
            deleted += ids.len();
            if ids.len() < ROUND as usize {
                return Ok(deleted);
            }
        }
    }

    /// Runs [`MediaStore::expire`] every `media.retention_sweep_ms` until `stop`, when
    /// retention is set.
    pub(crate) async fn run_retention(
        self: Arc<Self>,
        clock: Arc<dyn wagate_core::Clock>,
        stop: CancellationToken,
    ) {
        if self.limits.retention_ms == 0 {
            return;
        }
        let mut every = tokio::time::interval(crate::config::ms(self.limits.retention_sweep_ms));
        while stop.run_until_cancelled(every.tick()).await.is_some() {
            match stop.run_until_cancelled(self.expire(clock.now())).await {
                None | Some(Ok(0)) => {}
                Some(Ok(n)) => tracing::info!(deleted = n, "deleted expired media"),
                Some(Err(e)) => tracing::warn!(error = %e, "media retention failed; trying again later"),
            }
        }
    }
}

/// The MIME type of a file from its first bytes.
fn sniff(head: &[u8]) -> String {
    match infer::get(head) {
        Some(kind) => match kind.mime_type() {
            // WhatsApp calls MPEG-4 audio audio/mp4.
            "audio/m4a" | "audio/x-m4a" => "audio/mp4".into(),
            other => other.into(),
        },
        None if std::str::from_utf8(head).is_ok() => "text/plain".into(),
        None => "application/octet-stream".into(),
    }
}

/// What connectors need of the media store: a stored file's bytes to send, and a place for
/// the files they receive.
#[async_trait::async_trait]
impl wagate_connect::MediaFiles for MediaStore {
    async fn load(&self, id: &MediaId) -> Result<Vec<u8>, String> {
        let media = self.get(id).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("no media {id}"))?;
        let mut stream = self.read(&media, None).await.map_err(|e| e.to_string())?;
        let mut bytes = Vec::with_capacity(usize::try_from(media.size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        }
        Ok(bytes)
    }

    async fn store(
        &self,
        session: &SessionId,
        bytes: Vec<u8>,
        filename: Option<String>,
    ) -> Result<Media, String> {
        let org = match self.store.get_session(session).await {
            Ok(Some(session)) => session.org_id,
            Ok(None) => return Err(format!("no session {session}")),
            Err(e) => return Err(e.to_string()),
        };
        let body =
            futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(Bytes::from(bytes)) });
        self.save(&org, body, filename, chrono::Utc::now()).await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_sniffed_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), "image/jpeg");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"to,name\n1555,Ann\n"), "text/plain");
        assert_eq!(sniff(&[0, 159, 146, 150]), "application/octet-stream");
    }
}
