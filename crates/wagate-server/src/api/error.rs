//! The one error type of the HTTP API: `{"error":{"code","message","details"}}`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::error::Category;
use serde_json::{json, Value};
use wagate_store::StoreError;

/// Every `code` an error answer can carry (and the `code` of a stream's closing notice): a
/// closed list, so that clients can match on it. Written in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub(crate) enum ErrorCode {
    // The request itself.
    BadRequest,
    MalformedJson,
    MalformedMultipart,
    InvalidField,
    InvalidQuery,
    UnsupportedMediaType,
    RequestTimeout,
    PayloadTooLarge,
    MediaTooLarge,
    UploadFailed,
    MethodNotAllowed,
    RangeNotSatisfiable,
    RateLimited,
    Unauthorized,
    /// The key lacks the scope the route needs.
    Forbidden,
    /// An organization's quota (`details.quota`) is used up.
    QuotaExceeded,
    // Something named that does not exist.
    NotFound,
    RouteNotFound,
    SessionNotFound,
    MessageNotFound,
    CampaignNotFound,
    TemplateNotFound,
    WebhookNotFound,
    DeliveryNotFound,
    HookNotFound,
    MediaNotFound,
    NodeNotFound,
    CodeNotFound,
    OrgNotFound,
    KeyNotFound,
    // Not now, or not in this state.
    Conflict,
    IllegalTransition,
    SessionExists,
    SessionActive,
    SessionNotConnected,
    SessionNotLinked,
    PhoneInUse,
    TemplateExists,
    OrgExists,
    OrgNotEmpty,
    WebhookDisabled,
    CampaignState,
    MessageNotScheduled,
    MessageNotReceived,
    NoQrCode,
    NoValidRecipients,
    PrivateTarget,
    UnresolvableTarget,
    ConnectorUnavailable,
    NodeDraining,
    /// Retention deleted events after the reader's resume id (`details.expired_through`).
    EventsExpired,
    // Waiting, WhatsApp, and the server.
    Timeout,
    WaitTimeout,
    WhatsappUnavailable,
    WhatsappRefused,
    SlowConsumer,
    ShuttingDown,
    NotReady,
    InternalError,
}

/// An error answer. 5xx causes are logged here and never sent.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// When to try again (a 429): boxed, as few errors have it.
    pub throttle: Option<Box<Throttle>>,
}

/// The headers of an answer that says when to try again.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Seconds for `Retry-After`.
    retry_after: u64,
    /// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` of the bucket that refused.
    rate_limit: Option<(u32, u32, u64)>,
}

/// What WhatsApp said to a request made through a session's connection.
impl From<wagate_connect::SendError> for ApiError {
    fn from(e: wagate_connect::SendError) -> Self {
        match e {
            wagate_connect::SendError::Retryable(why) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::WhatsappUnavailable, why)
            }
            wagate_connect::SendError::Permanent { message, .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, ErrorCode::WhatsappRefused, message)
            }
        }
    }
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, throttle: None }
    }

    /// Answers with the `RateLimit-*` headers of the bucket that refused it.
    pub(crate) fn with_rate_limit(mut self, limit: u32, remaining: u32, reset_seconds: u64) -> Self {
        self.throttle.get_or_insert_with(Box::default).rate_limit = Some((limit, remaining, reset_seconds));
        self
    }

    /// Answers with `Retry-After: seconds`.
    pub(crate) fn with_retry_after(mut self, seconds: u64) -> Self {
        self.throttle.get_or_insert_with(Box::default).retry_after = seconds;
        self
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    /// The request body did not arrive within `api.body_read_timeout_ms`.
    pub(crate) fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            "the request body did not arrive in time (api.body_read_timeout_ms)",
        )
    }

    pub(crate) fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 for a field that parsed but is not acceptable; `details.field` names it.
    pub(crate) fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, format!("{field}: {message}"))
            .with_details(json!({ "field": field }))
    }

    pub(crate) fn shutting_down() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ShuttingDown, "the server is shutting down")
    }

    pub(crate) fn session_not_found(id: &str) -> Self {
        Self::not_found(ErrorCode::SessionNotFound, format!("no session with id {id:?}"))
    }

    /// A failure that is ours, not the caller's: logged in full, answered without detail.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(details) = self.details {
            error["details"] = details;
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(throttle) = self.throttle {
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(throttle.retry_after));
            if let Some((limit, remaining, reset)) = throttle.rate_limit {
                headers.insert("ratelimit-limit", header::HeaderValue::from(limit));
                headers.insert("ratelimit-remaining", header::HeaderValue::from(remaining));
                headers.insert("ratelimit-reset", header::HeaderValue::from(reset));
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound("session") => {
                Self::not_found(ErrorCode::SessionNotFound, "session not found")
            }
            StoreError::NotFound(what) => Self::not_found(ErrorCode::NotFound, format!("{what} not found")),
            StoreError::Conflict(what) => {
                Self::conflict(ErrorCode::Conflict, format!("{what} already exists"))
            }
            StoreError::QuotaExceeded(quota) => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::QuotaExceeded,
                format!("the organization's quota of {quota} is used up"),
            )
            .with_details(json!({ "quota": quota })),
            StoreError::IllegalTransition(t) => Self::conflict(ErrorCode::IllegalTransition, t.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let text = rejection.body_text();
        let detail = text.split_once("string: ").map_or(text.as_str(), |(_, d)| d);
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidQuery, detail)
    }
}

/// `Json` whose rejections are [`ApiError`]s: 415 without a JSON content type, 400 for
/// malformed JSON, 422 for a value that does not fit, with `details.field` naming it
/// (`text.body`, `recipients[3].to`).
pub(crate) struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if crate::http::timed_out(&rejection) {
                ApiError::request_timeout()
            } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    "request body is too large",
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, rejection.body_text())
            }
        })?;
        from_json(&bytes).map(Self)
    }
}

/// `application/json`, or another JSON type such as `application/merge-patch+json`.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
}

/// Parses a JSON body (an object: every body is one) into `T`; errors as [`ApiJson`] answers
/// them.
fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Serde would read a struct from an array too (`[null,null]` as every field left out).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(malformed_json)?;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            "the body must be a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(malformed_json)?;
            return Ok(value);
        }
        Err(error) => error,
    };
    if error.inner().classify() != Category::Data {
        return Err(json_error(error));
    }
    // JSON has one kind of number: `2.0` is the integer 2 to a JSON Schema (the document's
    // `integer`), though serde reads it only into a float. Such a body is read once more, with
    // its whole numbers written as integers; the fast path above stays one pass.
    let mut value: Value = serde_json::from_slice(bytes).map_err(malformed_json)?;
    if !whole_floats_to_integers(&mut value) {
        return Err(json_error(error));
    }
    serde_path_to_error::deserialize(value).map_err(json_error)
}

/// Reads a nested struct from a JSON object only (`#[serde(deserialize_with = "object")]`):
/// serde would take an array too, each item a field in order.
pub(crate) fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::{Deserialize, Error};
    match Option::<serde_json::Map<String, Value>>::deserialize(d)? {
        Some(fields) => T::deserialize(Value::Object(fields)).map_err(D::Error::custom),
        None => T::deserialize(Value::Null).map_err(D::Error::custom),
    }
}

/// Writes every float in `value` with no fractional part (and exact as an integer) as an
/// integer; whether there was one.
fn whole_floats_to_integers(value: &mut Value) -> bool {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Past 2^53 a float no longer names one integer.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            if f.fract() != 0.0 || f.abs() > EXACT {
                return false;
            }
            // Within ±2^53 the conversion is exact.
            #[allow(clippy::cast_possible_truncation)]
            let whole = f as i64;
            *value = Value::from(whole);
            true
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, v| whole_floats_to_integers(v) | any),
        Value::Object(fields) => fields.values_mut().fold(false, |any, v| whole_floats_to_integers(v) | any),
        _ => false,
    }
}

fn malformed_json(error: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::MalformedJson,
        format!("Failed to parse the request body as JSON: {error}"),
    )
}

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().clone();
    let error = error.into_inner();
    if error.classify() != Category::Data {
        return malformed_json(error);
    }
    // The line and column mean little to a caller who built the JSON in code; the field does.
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = text.strip_suffix(&position).unwrap_or(&text);
    let at = path.iter().next().is_some().then(|| path.to_string());
    // Serde reports a missing field only in its message (the wording of
    // `de::Error::missing_field`), with the path at the object that lacks it.
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'));
    match (at, missing) {
        (Some(at), Some(missing)) => ApiError::invalid_field(&format!("{at}.{missing}"), "is required"),
        (None, Some(missing)) => ApiError::invalid_field(missing, "is required"),
        (Some(at), None) => ApiError::invalid_field(&at, message),
        (None, None) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
    }
}

/// `Query` whose rejections are [`ApiError`]s.
pub(crate) struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}
