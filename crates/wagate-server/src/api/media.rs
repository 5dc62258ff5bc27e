//! `/v1/media`: upload a file once and send it by `media_id`; download stored files (ours
//! and those received), with Range requests.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use serde::Deserialize;
use wagate_core::{Media, MediaId};

use super::openapi::{ApiKeyRequired, ErrorBody};
use super::{ApiError, ApiQuery, ErrorCode};
use crate::auth::{scope, Caller};
use crate::media::MediaError;
use crate::AppState;

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::TooLarge(max) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::MediaTooLarge,
                format!("the file is larger than {max} bytes, the most any media message takes"),
            ),
            MediaError::Empty => ApiError::invalid_field("file", "is empty"),
            MediaError::Upload(reason) => {
                ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::UploadFailed, reason)
            }
            other => ApiError::internal(other),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadQuery {
    /// The file's name (a raw upload has no other place for it).
    filename: Option<String>,
}

/// How the document shows a multipart upload: its `file` part; other parts are passed over.
struct FileUpload;

impl utoipa::PartialSchema for FileUpload {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("file", <RawFile as utoipa::PartialSchema>::schema())
            .required("file")
            .into()
    }
}

impl utoipa::ToSchema for FileUpload {}

/// How the document shows a file's bytes: at least one.
struct RawFile;

impl utoipa::PartialSchema for RawFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .min_length(Some(1))
            .into()
    }
}

impl utoipa::ToSchema for RawFile {}

/// Stores a file. The type is sniffed from the bytes, not taken from the upload's headers.
#[utoipa::path(operation_id = "media_upload", post, path = "/media", tag = "media", params(UploadQuery),
    request_body(description = "`multipart/form-data` with a part `file`, or the raw bytes with any `Content-Type`",
        content((FileUpload = "multipart/form-data"), (RawFile = "application/octet-stream"))),
    responses((status = 201, body = Media, description = "Stored"), (status = 400, description = "Malformed upload", body = ErrorBody),
        ApiKeyRequired,
        (status = 413, description = "Larger than the largest media message (`media.max_document_bytes`)", body = ErrorBody),
        (status = 422, description = "Empty, or no `file` part", body = ErrorBody)))]
pub(super) async fn upload(
    State(state): State<AppState>,
    caller: Caller<scope::SendMessages>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    request: Request,
) -> Result<(StatusCode, Json<Media>), ApiError> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let now = state.engine.now();
    let org = caller.home_org();
    let media = if multipart {
        let mut form = Multipart::from_request(request, &state).await.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedMultipart, e.body_text())
        })?;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedMultipart, e.body_text())
                })?
                .ok_or_else(|| ApiError::invalid_field("file", "the multipart upload has no `file` part"))?;
            if field.name() == Some("file") {
                let filename = query.filename.clone().or_else(|| field.file_name().map(str::to_owned));
                break state.media.save(&org, field, filename, now).await?;
            }
        }
    } else {
        state.media.save(&org, request.into_body().into_data_stream(), query.filename, now).await?
    };
    Ok((StatusCode::CREATED, Json(media)))
}

/// The bytes of a stored file; `Range: bytes=…` asks for part of it.
#[utoipa::path(operation_id = "media_download", get, path = "/media/{id}", tag = "media",
    params(("id" = String, Path, description = "Media id (`med_…`)"), ("Range" = Option<String>, Header, description = "`bytes=start-end`, `bytes=start-` or `bytes=-suffix`")),
    responses((status = 200, description = "The file, with its type, length and `Content-Disposition`"), (status = 206, description = "The range asked for"),
        (status = 307, description = "With `media.presigned_downloads` (S3): the file is at `Location`"),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody),
        (status = 416, description = "The range is outside the file", body = ErrorBody)))]
pub(super) async fn download(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(ErrorCode::MediaNotFound, format!("no media with id {raw:?}"));
    let id = MediaId::parse(&raw).map_err(|_| not_found())?;
    let media =
        state.media.get(&id).await?.filter(|media| caller.sees_org(&media.org_id)).ok_or_else(not_found)?;
    if let Some(url) = state.media.presigned_url(&media).await? {
        let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
        response.headers_mut().insert(header::LOCATION, value_of(url.as_str()));
        return Ok(response);
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => match byte_range(value, media.size) {
            Ok(range) => range,
            Err(()) => {
                let mut error = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    ErrorCode::RangeNotSatisfiable,
                    format!("the file has {} bytes", media.size),
                )
                .into_response();
                error
                    .headers_mut()
                    .insert(header::CONTENT_RANGE, value_of(&format!("bytes */{}", media.size)));
                return Ok(error);
            }
        },
    };
    let stream = state.media.read(&media, range.clone()).await?.map_err(std::io::Error::other);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, value_of(&media.mime_type));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, value_of(&format!("\"{}\"", media.sha256)));
    let name = media.filename.clone().unwrap_or_else(|| media.id.to_string());
    // Quotes and backslashes would end the quoted name early.
    let name: String = name.chars().filter(|c| !matches!(c, '"' | '\\') && !c.is_control()).collect();
    let disposition = format!("inline; filename=\"{}\"", name.replace(|c: char| !c.is_ascii(), "_"));
    headers.insert(header::CONTENT_DISPOSITION, value_of(&disposition));
    match range {
        Some(range) => {
            headers.insert(header::CONTENT_LENGTH, value_of(&(range.end - range.start).to_string()));
            let content_range = format!("bytes {}-{}/{}", range.start, range.end - 1, media.size);
            headers.insert(header::CONTENT_RANGE, value_of(&content_range));
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        None => {
            headers.insert(header::CONTENT_LENGTH, value_of(&media.size.to_string()));
        }
    }
    Ok(response)
}

fn value_of(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The one byte range a `Range` header asks for (end exclusive): None to send the whole
/// file (no range, or several, which a server may answer whole); Err when it is outside.
fn byte_range(value: &str, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| ());
    let range = match (start.trim().is_empty(), end.trim().is_empty()) {
        // The last `end` bytes.
        (true, false) => size.saturating_sub(number(end)?)..size,
        (false, true) => number(start)?..size,
        (false, false) => number(start)?..number(end)?.saturating_add(1).min(size),
        (true, true) => return Err(()),
    };
    if range.start >= range.end || range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_are_read_as_the_http_spec_says() {
        assert_eq!(byte_range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(byte_range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(byte_range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(byte_range("bytes=50-500", 100), Ok(Some(50..100)));
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(byte_range("items=0-1", 100), Ok(None));
        assert_eq!(byte_range("bytes=100-", 100), Err(()));
        assert_eq!(byte_range("bytes=5-2", 100), Err(()));
        assert_eq!(byte_range("bytes=x-2", 100), Err(()));
    }
}
