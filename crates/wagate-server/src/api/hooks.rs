//! Trigger hooks: `POST /v1/sessions/{id}/hooks` makes a secret URL, `/hooks/{token}`, that
//! anyone holding it can POST to (no API key) to send to the hook's fixed recipients. Only a
//! hash of the token is stored; calls are rate-limited per hook, on each node.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wagate_core::{Hook, HookId, Jid};
use wagate_store::{NewHook, NewOutbound, StoreError};

use super::compose::{self, TemplateRef};
use super::openapi::{ApiKeyRequired, ErrorBody, HookCreated, HookList};
use super::{visible_session, ApiError, ApiJson, ErrorCode};
use crate::auth::{scope, Caller};
use crate::AppState;

/// Recipients one hook may send to.
const MAX_RECIPIENTS: usize = 50;

/// Calls per hook and minute (`api.hook_calls_per_minute`), counted on each node: a hook
/// reached through several nodes takes that many calls a minute at each. Up to the limit may
/// come at once; after that, one more as each 1/limit of a minute passes.
pub(crate) struct HookLimits {
    limiter: DefaultKeyedRateLimiter<HookId>,
}

impl HookLimits {
    pub(crate) fn new(per_minute: NonZeroU32) -> Self {
        Self { limiter: RateLimiter::keyed(Quota::per_minute(per_minute)) }
    }

    /// Counts a call; when over the limit, how long until the next is allowed.
    fn admit(&self, hook: &HookId) -> Result<(), Duration> {
        let admitted = self.limiter.check_key(hook);
        // Hooks quiet for a minute count as never called: forget them, so that the limiter
        // holds only the hooks called lately.
        self.limiter.retain_recent();
        admitted.map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"to": "15557770001", "description": "CI: failed builds"}))]
#[serde(deny_unknown_fields)]
pub(super) struct CreateHook {
    /// One recipient or a list of them.
    #[schema(value_type = HookRecipients)]
    to: Value,
    /// Send this template with the params each call posts, instead of the text it posts.
    template: Option<String>,
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// How the document shows a hook's `to`: one recipient, or a list of 1 to 50.
struct HookRecipients;

impl utoipa::PartialSchema for HookRecipients {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        use wagate_core::Recipient;
        let many = ArrayBuilder::new()
            .items(<Recipient as utoipa::PartialSchema>::schema())
            .min_items(Some(1))
            .max_items(Some(MAX_RECIPIENTS));
        OneOfBuilder::new().item(<Recipient as utoipa::PartialSchema>::schema()).item(many).into()
    }
}

impl utoipa::ToSchema for HookRecipients {}

fn recipients(to: Value) -> Result<Vec<String>, ApiError> {
    let list = match to {
        Value::String(one) => vec![one],
        Value::Array(many) => many
            .into_iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::invalid_field("to", "must be a phone number or a list of them"))?,
        _ => return Err(ApiError::invalid_field("to", "must be a phone number or a list of them")),
    };
    if list.is_empty() || list.len() > MAX_RECIPIENTS {
        return Err(ApiError::invalid_field("to", format!("must name 1 to {MAX_RECIPIENTS} recipients")));
    }
    list.iter()
        .map(|to| {
            Jid::parse_recipient(to).map(|jid| jid.to_string()).map_err(|e| ApiError::invalid_field("to", e))
        })
        .collect()
}

#[utoipa::path(operation_id = "hooks_create", post, path = "/sessions/{id}/hooks", tag = "hooks",
    params(("id" = String, Path, description = "Session id")), request_body = CreateHook,
    responses((status = 201, body = HookCreated, description = "The hook, with its secret URL (shown only now)"),
        (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateHook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let session = visible_session(&state, &caller, &raw).await?;
    let to = recipients(body.to)?;
    if let Some(name) = &body.template {
        if state.engine.store().get_template(&session.org_id, name).await?.is_none() {
            return Err(ApiError::invalid_field("template", format!("no template named {name:?}")));
        }
    }
    if body.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        return Err(ApiError::invalid_field("description", "must be at most 500 characters"));
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let new = NewHook {
        session_id: session.id,
        token_hash: token_hash(&token),
        to,
        template: body.template,
        description: body.description,
    };
    let hook = match state.engine.store().create_hook(new, state.engine.now()).await {
        Err(StoreError::NotFound(_)) => return Err(ApiError::session_not_found(&raw)),
        other => other?,
    };
    let path = format!("/hooks/{token}");
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let mut shown = json!(hook);
    shown["path"] = json!(path);
    shown["url"] = json!(format!("http://{host}{path}"));
    Ok((StatusCode::CREATED, Json(shown)))
}

#[utoipa::path(operation_id = "hooks_list", get, path = "/sessions/{id}/hooks", tag = "hooks",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = HookList, description = "OK"), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = visible_session(&state, &caller, &raw).await?.id;
    Ok(Json(json!({ "data": state.engine.store().list_hooks(&session).await? })))
}

fn hook_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::HookNotFound, "no such hook")
}

#[utoipa::path(operation_id = "hooks_revoke", delete, path = "/sessions/{id}/hooks/{hook_id}", tag = "hooks",
    params(("id" = String, Path, description = "Session id"), ("hook_id" = String, Path, description = "Hook id (`hk_…`)")),
    responses((status = 204, description = "Revoked: its URL no longer sends"), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path((raw, hook)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let session = visible_session(&state, &caller, &raw).await?.id;
    let hook = HookId::parse(&hook).map_err(|_| hook_not_found())?;
    if state.engine.store().delete_hook(&session, &hook).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(hook_not_found())
    }
}

/// What a call posts: `{"text"}`, `{"params"}` for a template hook, or a plain-text body.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"text": "Build 512 failed on main"}))]
#[serde(deny_unknown_fields)]
pub(super) struct HookCall {
    text: Option<String>,
    #[serde(default)]
    params: HashMap<String, Value>,
}

fn call_body(headers: &HeaderMap, body: &Bytes) -> Result<HookCall, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return serde_json::from_slice(body).map_err(|e| ApiError::invalid_field("body", e));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::invalid_field("body", "must be UTF-8 text"))?;
    Ok(HookCall { text: Some(text.trim().to_owned()), params: HashMap::new() })
}

#[utoipa::path(operation_id = "hooks_call", post, path = "/hooks/{token}", tag = "hooks", security(()),
    params(("token" = String, Path, description = "The hook's secret token")),
    request_body(content = HookCall, description = "JSON `{\"text\"}` (or `{\"params\"}` for a template hook), or a plain-text body"),
    responses((status = 202, description = "Queued, one message per recipient", body = Object),
        (status = 404, description = "No such hook (or revoked)", body = ErrorBody),
        (status = 422, description = "Invalid text or params", body = ErrorBody),
        (status = 429, description = "Too many calls; see Retry-After", body = ErrorBody)))]
pub(super) async fn call(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let hook: Hook = state
        .engine
        .store()
        .use_hook(&token_hash(&token), state.engine.now())
        .await?
        .ok_or_else(hook_not_found)?;
    if let Err(wait) = state.hook_limits.admit(&hook.id) {
        let seconds = wait.as_secs().max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many calls to this hook",
        )
        .with_details(json!({ "retry_after_seconds": seconds }))
        .into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(response);
    }
    let call = call_body(&headers, &body)?;
    let org = state.engine.owned_session(&hook.session_id, false).await?.ok_or_else(hook_not_found)?.org_id;
    let content = match &hook.template {
        Some(name) => {
            let reference = TemplateRef { name: name.clone(), params: call.params };
            compose::render_template(&state, &org, Some(reference)).await?
        }
        None => compose::text_content(call.text.unwrap_or_default(), "text")?,
    };
    super::orgs::check_daily_quota(&state, &org, hook.to.len() as u64).await?;
    let mut sent = Vec::with_capacity(hook.to.len());
    for to in &hook.to {
        let to = Jid::parse_recipient(to).map_err(ApiError::internal)?;
        let new = NewOutbound {
            session_id: hook.session_id.clone(),
            org_id: org.clone(),
            to,
            content: content.clone(),
            idempotency_key: None,
            scheduled_at: None,
            context: None,
            mentions: Vec::new(),
        };
        let message = state.engine.accept(new).await?.message;
        sent.push(json!({ "id": message.id, "to": message.to, "status": message.status }));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "messages": sent })).into_response()).into_response())
}
