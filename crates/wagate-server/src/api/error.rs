//! The one error type of the HTTP API: `{"error":{"code","message","details"}}`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use wagate_store::StoreError;

/// An error answer. 5xx causes are logged here and never sent.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 for a field that parsed but is not acceptable; `details.field` names it.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("{field}: {message}"))
            .with_details(json!({ "field": field }))
    }

    pub fn shutting_down() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
    }

    pub fn session_not_found(id: &str) -> Self {
        Self::not_found("session_not_found", format!("no session with id {id:?}"))
    }

    /// A failure that is ours, not the caller's: logged in full, answered without detail.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error; see the server log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(details) = self.details {
            error["details"] = details;
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound("session") => Self::not_found("session_not_found", "session not found"),
            StoreError::NotFound(what) => Self::not_found("not_found", format!("{what} not found")),
            StoreError::Conflict(what) => Self::conflict("conflict", format!("{what} already exists")),
            StoreError::IllegalTransition(t) => Self::conflict("illegal_transition", t.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let text = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => {
                let detail = text.split_once("target type: ").map_or(text.as_str(), |(_, d)| d);
                let detail = detail.split(" at line ").next().unwrap_or(detail);
                let field = data_error_field(detail);
                let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail);
                if let Some(field) = field {
                    error = error.with_details(json!({ "field": field }));
                }
                error
            }
            JsonRejection::JsonSyntaxError(_) => Self::new(StatusCode::BAD_REQUEST, "malformed_json", text),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(status, "payload_too_large", "request body is too large")
            }
            _ => Self::new(StatusCode::BAD_REQUEST, "bad_request", text),
        }
    }
}

/// The field a serde data error is about: serde_path_to_error prefixes the path
/// (`text.body: invalid type…`), except for errors about the object itself.
fn data_error_field(detail: &str) -> Option<String> {
    if let Some(rest) = detail.strip_prefix("missing field `") {
        return rest.split('`').next().map(str::to_owned);
    }
    if detail.starts_with("unknown variant `") {
        return Some("type".into());
    }
    if detail.starts_with("unknown field `") {
        return detail.split('`').nth(1).map(str::to_owned);
    }
    let (path, rest) = detail.split_once(": ")?;
    if path.contains(' ') {
        return None;
    }
    let path = path.trim_start_matches('.');
    if let Some(inner) = rest.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
        return Some(format!("{path}.{inner}"));
    }
    Some(path.to_owned())
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let text = rejection.body_text();
        let detail = text.split_once("string: ").map_or(text.as_str(), |(_, d)| d);
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", detail)
    }
}

/// `Json` whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// `Query` whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

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
