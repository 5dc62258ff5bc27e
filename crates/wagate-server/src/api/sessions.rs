//! `/v1/sessions`: create, list, connect, link by QR, disconnect, log out, delete.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use wagate_core::{ConnectorKind, OrgId, PhoneNumber, Session, SessionId};
use wagate_store::{NewSession, StoreError};

use super::openapi::{ApiKeyRequired, ErrorBody, QrCode, SessionList};
use super::{visible_session, ApiError, ApiJson, ApiQuery, ErrorCode};
use crate::auth::{org_not_found, scope, Caller};
use crate::engine::{LinkCode, SessionError};
use crate::AppState;

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound => ApiError::not_found(ErrorCode::SessionNotFound, "session not found"),
            SessionError::Active(status) => ApiError::conflict(
                ErrorCode::SessionActive,
                format!("session is already {status}; disconnect it first"),
            ),
            SessionError::NotRunning => {
                ApiError::conflict(ErrorCode::SessionNotConnected, "session is not connected")
            }
            SessionError::NotLinked => {
                ApiError::conflict(ErrorCode::SessionNotLinked, "session is not linked to a phone")
            }
            SessionError::NoConnector(kind) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ConnectorUnavailable,
                format!("connector `{kind}` is not enabled on this server"),
            ),
            SessionError::Draining => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NodeDraining,
                "this node is draining and takes no sessions; connect through another node",
            ),
            SessionError::Store(e) => e.into(),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "sales-1", "connector": "sim", "name": "Sales line"}))]
#[serde(deny_unknown_fields)]
pub(super) struct CreateSession {
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    id: Option<String>,
    /// The organization the session belongs to; only the gateway's admin key may name one
    /// (`default` when it names none); a key's sessions belong to its own.
    #[schema(value_type = Option<OrgId>)]
    org_id: Option<String>,
    #[schema(value_type = wagate_core::ConnectorKind)]
    connector: String,
    #[schema(max_length = 200)]
    name: Option<String>,
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

fn object_field(field: &str, value: Option<Value>) -> Result<Value, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(json!({})),
        Some(value @ Value::Object(_)) => Ok(value),
        Some(_) => Err(ApiError::invalid_field(field, "must be a JSON object")),
    }
}

#[utoipa::path(operation_id = "sessions_create", post, path = "/sessions", tag = "sessions", request_body = CreateSession,
    responses((status = 201, body = Session, description = "Created"), (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired, (status = 404, description = "No such organization", body = ErrorBody), (status = 409, description = "Wrong state or duplicate", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller<scope::ManageSessions>,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let id = match body.id.as_deref() {
        Some(raw) => SessionId::parse(raw).map_err(|e| ApiError::invalid_field("id", e))?,
        None => SessionId::generate(),
    };
    let named_org =
        body.org_id.as_deref().map(|raw| OrgId::parse(raw).map_err(|_| org_not_found(raw))).transpose()?;
    let org_id = caller.org_for_new(named_org)?;
    let connector = ConnectorKind::parse(&body.connector)
        .ok_or_else(|| ApiError::invalid_field("connector", "must be one of sim, web"))?;
    if !state.engine.has_connector(connector) {
        return Err(SessionError::NoConnector(connector.as_str()).into());
    }
    if body.name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ApiError::invalid_field("name", "must be at most 200 characters"));
    }
    let config = object_field("config", body.config)?;
    if let Some(pacing) = config.get("pacing") {
        state
            .config
            .pacing
            .defaults(connector)
            .with_overrides(pacing)
            .map_err(|e| ApiError::invalid_field("config.pacing", e))?;
    }
    let new = NewSession {
        id: id.clone(),
        org_id: org_id.clone(),
        connector,
        name: body.name,
        config,
        metadata: object_field("metadata", body.metadata)?,
    };
    let session = match state.engine.create_session(new).await {
        Err(StoreError::NotFound("organization")) => return Err(org_not_found(org_id.as_str())),
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(
                ErrorCode::SessionExists,
                format!("a session with id {id:?} already exists"),
            ))
        }
        other => other?,
    };
    Ok((StatusCode::CREATED, Json(session)))
}

#[utoipa::path(operation_id = "sessions_list", get, path = "/sessions", tag = "sessions", responses((status = 200, body = SessionList, description = "OK"), ApiKeyRequired))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::ReadSessions>,
) -> Result<Json<Value>, ApiError> {
    let mut sessions = state.engine.store().list_sessions(caller.org()).await?;
    sessions.retain(|session| caller.sees_session(session));
    Ok(Json(json!({ "data": sessions })))
}

#[utoipa::path(operation_id = "sessions_get", get, path = "/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "Session id")), responses((status = 200, body = Session, description = "OK"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller<scope::ReadSessions>,
    Path(raw): Path<String>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(visible_session(&state, &caller, &raw).await?))
}

#[utoipa::path(operation_id = "sessions_delete", delete, path = "/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Deleted with its messages; its events stay in the log"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller<scope::ManageSessions>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = visible_session(&state, &caller, &raw).await?.id;
    state.engine.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(example = json!({"pairing_phone": "15550001111"}))]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectRequest {
    #[schema(value_type = Option<PhoneNumber>)]
    pairing_phone: Option<String>,
}

#[utoipa::path(operation_id = "sessions_connect", post, path = "/sessions/{id}/connect", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    request_body(content = Option<ConnectRequest>, description = "Optional; `pairing_phone` links by pairing code instead of QR"),
    responses((status = 202, body = Session, description = "Connecting"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Wrong state or duplicate", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn connect(
    State(state): State<AppState>,
    caller: Caller<scope::ManageSessions>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let id = visible_session(&state, &caller, &raw).await?.id;
    // The body is optional: `curl -X POST …/connect` with none is the common case.
    let request: ConnectRequest = if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null"
    {
        ConnectRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, e.to_string())
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, e.to_string()),
        })?
    };
    let pairing_phone = request
        .pairing_phone
        .map(|p| PhoneNumber::parse(&p).map_err(|e| ApiError::invalid_field("pairing_phone", e)))
        .transpose()?;
    let session = state.engine.connect(&id, pairing_phone).await?;
    Ok((StatusCode::ACCEPTED, Json(session)))
}

#[utoipa::path(operation_id = "sessions_disconnect", post, path = "/sessions/{id}/disconnect", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Session, description = "OK"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Wrong state or duplicate", body = ErrorBody)))]
pub(super) async fn disconnect(
    State(state): State<AppState>,
    caller: Caller<scope::ManageSessions>,
    Path(raw): Path<String>,
) -> Result<Json<Session>, ApiError> {
    let id = visible_session(&state, &caller, &raw).await?.id;
    Ok(Json(state.engine.disconnect(&id).await?))
}

#[utoipa::path(operation_id = "sessions_logout", post, path = "/sessions/{id}/logout", tag = "sessions", params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Session, description = "OK"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Wrong state or duplicate", body = ErrorBody)))]
pub(super) async fn logout(
    State(state): State<AppState>,
    caller: Caller<scope::ManageSessions>,
    Path(raw): Path<String>,
) -> Result<Json<Session>, ApiError> {
    let id = visible_session(&state, &caller, &raw).await?.id;
    Ok(Json(state.engine.logout(&id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct QrQuery {
    /// `json` (default), `png` or `svg`.
    #[param(value_type = Option<String>, pattern = "^(json|png|svg)$")]
    format: Option<String>,
}

#[utoipa::path(operation_id = "sessions_qr", get, path = "/sessions/{id}/qr", tag = "sessions", params(("id" = String, Path, description = "Session id"), QrQuery),
    responses((status = 200, content((QrCode = "application/json"), (String = "image/png"), (String = "image/svg+xml")), description = "The code; with `format=png` or `svg` the image itself (image/png, image/svg+xml)"),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "The session shows no code now", body = ErrorBody)))]
pub(super) async fn qr(
    State(state): State<AppState>,
    caller: Caller<scope::ReadSessions>,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<QrQuery>,
) -> Result<Response, ApiError> {
    let session = visible_session(&state, &caller, &raw).await?;
    let no_code = || {
        ApiError::conflict(
            ErrorCode::NoQrCode,
            format!("session is {}, not showing a QR code", session.status.as_str()),
        )
        .with_details(json!({ "status": session.status }))
    };
    let code = state.engine.link_code(&session).await?.ok_or_else(no_code)?;
    let format = query.format.as_deref().unwrap_or("json");
    let response = match (code, format) {
        (LinkCode::Qr { code, expires_at }, "json") => {
            let png = crate::qr::png(&code).map_err(ApiError::internal)?;
            let image =
                format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
            Json(json!({ "code": code, "expires_at": expires_at, "image": image })).into_response()
        }
        (LinkCode::Qr { code, .. }, "png") => {
            let png = crate::qr::png(&code).map_err(ApiError::internal)?;
            ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], png).into_response()
        }
        (LinkCode::Qr { code, .. }, "svg") => {
            let svg = crate::qr::svg(&code).map_err(ApiError::internal)?;
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg)
                .into_response()
        }
        (LinkCode::Pairing { code, expires_at }, "json") => {
            Json(json!({ "pairing_code": code, "expires_at": expires_at })).into_response()
        }
        (LinkCode::Pairing { .. }, "png" | "svg") => return Err(no_code()),
        (_, other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidQuery,
                format!("format {other:?} is not one of json, png, svg"),
            ))
        }
    };
    Ok(response)
}
