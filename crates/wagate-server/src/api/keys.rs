//! `/v1/keys`: API keys of organizations. The secret is shown once, when the key is made; only
//! its hash is kept. An organization's admin (scope `admin`) manages its own organization's
//! keys; the gateway's admin key manages every organization's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use wagate_core::{ApiKey, KeyId, OrgId, Scope, SessionId};
use wagate_store::StoreError;

use super::openapi::{ApiKeyRequired, ErrorBody};
use super::{visible_session, ApiError, ApiJson, ErrorCode};
use crate::auth::{self, org_not_found, scope, Caller, Principal};
use crate::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "crm", "scopes": ["messages:send", "messages:read"], "expires_at": "2030-01-01T00:00:00Z"}))]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    #[schema(max_length = 200, pattern = "\\S")]
    name: String,
    /// The key's organization; only the gateway's admin key may name one (`default` when it
    /// names none). An organization's admin makes keys of its own.
    #[schema(value_type = Option<OrgId>)]
    org_id: Option<String>,
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// Limits the key to these sessions of its organization.
    #[schema(value_type = Option<Vec<SessionId>>, min_items = 1, max_items = 1000)]
    sessions: Option<Vec<String>>,
    /// RFC 3339; the key opens nothing after it.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// A key just made, with its secret: shown only now.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct KeyCreated {
    #[serde(flatten)]
    key: ApiKey,
    /// The secret to send as `Authorization: Bearer <secret>`; only its hash is kept.
    secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct KeyList {
    pub data: Vec<ApiKey>,
}

fn key_not_found(raw: &str) -> ApiError {
    ApiError::not_found(ErrorCode::KeyNotFound, format!("no API key with id {raw:?}"))
}

/// The sessions a new key is limited to: each one the caller may see, of the key's organization.
async fn key_sessions(
    state: &AppState,
    caller: &Principal,
    org: &OrgId,
    raw: Option<Vec<String>>,
) -> Result<Option<Vec<SessionId>>, ApiError> {
    let Some(raw) = raw else {
        // A caller limited to some sessions cannot make a key that is not.
        return match caller.sessions() {
            Some(_) => Err(ApiError::invalid_field(
                "sessions",
                "a key limited to sessions makes keys limited to them",
            )),
            None => Ok(None),
        };
    };
    if raw.is_empty() || raw.len() > 1000 {
        return Err(ApiError::invalid_field("sessions", "must list 1 to 1000 session ids, or be left out"));
    }
    let mut sessions = Vec::with_capacity(raw.len());
    for (i, id) in raw.iter().enumerate() {
        let field = format!("sessions[{i}]");
        match visible_session(state, caller, id).await {
            Ok(session) if &session.org_id == org => sessions.push(session.id),
            Ok(_) | Err(_) => {
                return Err(ApiError::invalid_field(&field, "names no session of the key's organization"))
            }
        }
    }
    sessions.sort();
    sessions.dedup();
    Ok(Some(sessions))
}

#[utoipa::path(operation_id = "keys_create", post, path = "/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = KeyCreated, description = "Created; `secret` is shown only now"), (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired,
        (status = 404, description = "No such organization", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller<scope::Admin>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid_field("name", "must be 1 to 200 characters"));
    }
    if body.scopes.is_empty() {
        return Err(ApiError::invalid_field("scopes", "must list at least one scope"));
    }
    let named =
        body.org_id.as_deref().map(|raw| OrgId::parse(raw).map_err(|_| org_not_found(raw))).transpose()?;
    let org_id = caller.org_for_new(named)?;
    let now = state.engine.now();
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|raw| {
            chrono::DateTime::parse_from_rfc3339(raw)
                .map(|t| t.to_utc())
                .ok()
                .filter(|t| *t > now)
                .ok_or_else(|| {
                    ApiError::invalid_field("expires_at", "must be an RFC 3339 time in the future")
                })
        })
        .transpose()?;
    let sessions = key_sessions(&state, &caller, &org_id, body.sessions).await?;
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    let key = ApiKey {
        id: KeyId::generate(),
        org_id,
        name,
        scopes,
        sessions,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    let secret = auth::generate_secret();
    match state.engine.store().create_key(&key, &auth::secret_hash(&secret)).await {
        Err(StoreError::NotFound(_)) => return Err(org_not_found(key.org_id.as_str())),
        other => other?,
    }
    tracing::info!(key_id = %key.id, org_id = %key.org_id, "API key created");
    Ok((StatusCode::CREATED, Json(KeyCreated { key, secret })))
}

#[utoipa::path(operation_id = "keys_list", get, path = "/keys", tag = "keys",
    responses((status = 200, body = KeyList, description = "Newest first, revoked ones included"), ApiKeyRequired))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::Admin>,
) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(KeyList { data: state.engine.store().list_keys(caller.org()).await? }))
}

async fn visible_key(state: &AppState, caller: &Principal, raw: &str) -> Result<ApiKey, ApiError> {
    let id = KeyId::parse(raw).map_err(|_| key_not_found(raw))?;
    match state.engine.store().get_key(&id).await? {
        Some(key) if caller.sees_org(&key.org_id) => Ok(key),
        _ => Err(key_not_found(raw)),
    }
}

#[utoipa::path(operation_id = "keys_get", get, path = "/keys/{id}", tag = "keys", params(("id" = String, Path, description = "Key id (`key_…`)")),
    responses((status = 200, body = ApiKey, description = "OK"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller<scope::Admin>,
    Path(raw): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(visible_key(&state, &caller, &raw).await?))
}

#[utoipa::path(operation_id = "keys_revoke", delete, path = "/keys/{id}", tag = "keys", params(("id" = String, Path, description = "Key id (`key_…`)")),
    responses((status = 200, body = ApiKey, description = "Revoked: it opens nothing any more (it stays listed)"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller<scope::Admin>,
    Path(raw): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    let key = visible_key(&state, &caller, &raw).await?;
    let revoked = state.engine.store().revoke_key(&key.id, state.engine.now()).await?;
    tracing::info!(key_id = %key.id, "API key revoked");
    revoked.map(Json).ok_or_else(|| key_not_found(&raw))
}
