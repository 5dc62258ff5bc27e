//! `/v1/webhooks`: register receivers of events, inspect and retry their deliveries, replay.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wagate_core::{Delivery, DeliveryId, DeliveryStatus, EventId, EventType, SessionId, Webhook, WebhookId};
use wagate_store::{DeliveryQuery, EventBound, NewWebhook, StoreError, WebhookChange};

use super::openapi::{ApiKeyRequired, DeliveryList, ErrorBody, Replayed, WebhookList, WebhookWithSecret};
use super::{page_limit, ApiError, ApiJson, ApiQuery, ErrorCode};
use crate::auth::{scope, Caller, Principal};
use crate::webhooks::signing::generate_secret;
use crate::webhooks::targets::{check_url, TargetError};
use crate::AppState;

const MAX_URL_LEN: usize = 2048;
const MAX_FILTERS: usize = 50;
const MAX_DESCRIPTION_CHARS: usize = 500;

/// The id of a webhook the caller may see: one of its organization (and, for a key limited
/// to sessions, one limited to one of them); any other is answered as one that does not exist.
async fn webhook_id(state: &AppState, caller: &Principal, raw: &str) -> Result<WebhookId, ApiError> {
    let id = WebhookId::parse(raw).map_err(|_| webhook_not_found(raw))?;
    let webhook = state.engine.store().get_webhook(&id).await?;
    match webhook {
        Some(webhook) if sees_webhook(caller, &webhook) => Ok(id),
        _ => Err(webhook_not_found(raw)),
    }
}

fn sees_webhook(caller: &Principal, webhook: &Webhook) -> bool {
    caller.sees_org(&webhook.org_id)
        && caller
            .sessions()
            .is_none_or(|allowed| webhook.session_id.as_ref().is_some_and(|s| allowed.contains(s)))
}

fn webhook_not_found(id: &str) -> ApiError {
    ApiError::not_found(ErrorCode::WebhookNotFound, format!("no webhook with id {id:?}"))
}

fn found(webhook: Option<Webhook>, id: &WebhookId) -> Result<Webhook, ApiError> {
    webhook.ok_or_else(|| webhook_not_found(id.as_str()))
}

/// A webhook as the API shows it; the secret only when it was just made.
fn shown(webhook: &Webhook, with_secret: bool) -> Value {
    let mut value = json!(webhook);
    if with_secret {
        value["secret"] = json!(webhook.secret);
    }
    value
}

async fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::invalid_field("url", format!("must be at most {MAX_URL_LEN} characters")));
    }
    match check_url(url, state.config.webhooks.allow_private_targets).await {
        Ok(url) => Ok(url.to_string()),
        Err(TargetError::Invalid(why)) => Err(ApiError::invalid_field("url", why)),
        Err(e @ TargetError::Private(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PrivateTarget,
            format!("url: {e}; set webhooks.allow_private_targets = true to allow such targets"),
        )
        .with_details(json!({ "field": "url" }))),
        Err(e @ TargetError::Unresolvable(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::UnresolvableTarget,
            format!("url: {e}"),
        )
        .with_details(json!({ "field": "url" }))),
    }
}

/// Event filters: exact types, `prefix.*` or `*`, each selecting at least one type.
fn checked_filters(filters: Vec<String>) -> Result<Vec<String>, ApiError> {
    if filters.is_empty() {
        return Err(ApiError::invalid_field("events", "must name at least one event type, or \"*\""));
    }
    if filters.len() > MAX_FILTERS {
        return Err(ApiError::invalid_field("events", format!("at most {MAX_FILTERS} filters")));
    }
    let mut checked: Vec<String> = Vec::with_capacity(filters.len());
    for filter in filters {
        let filter = filter.trim().to_owned();
        if !EventType::ALL.into_iter().any(|kind| kind.matches(&filter)) {
            return Err(ApiError::invalid_field("events", format!("{filter:?} matches no event type")));
        }
        if !checked.contains(&filter) {
            checked.push(filter);
        }
    }
    Ok(checked)
}

fn checked_description(description: Option<String>) -> Result<Option<String>, ApiError> {
    match description {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => Err(ApiError::invalid_field(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
        other => Ok(other),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"url": "https://example.com/wagate", "events": ["message.*", "session.status"], "description": "CRM"}))]
#[serde(deny_unknown_fields)]
pub(super) struct CreateWebhook {
    #[schema(value_type = WebhookUrl)]
    url: String,
    /// Every event when absent.
    #[schema(value_type = Option<Vec<wagate_core::EventFilter>>, min_items = 1, max_items = 50)]
    events: Option<Vec<String>>,
    #[schema(value_type = Option<SessionId>)]
    session_id: Option<String>,
    #[schema(max_length = 500)]
    description: Option<String>,
}

#[utoipa::path(operation_id = "webhooks_create", post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecret, description = "The secret is shown only now"), (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired,
        (status = 404, description = "No such session (`session_id`)", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let events = checked_filters(body.events.unwrap_or_else(|| vec!["*".into()]))?;
    // A webhook limited to a session belongs to the session's organization.
    let session = match body.session_id {
        Some(raw) => {
            SessionId::parse(&raw).map_err(|e| ApiError::invalid_field("session_id", e))?;
            Some(super::visible_session(&state, &caller, &raw).await?)
        }
        None if caller.sessions().is_some() => {
            return Err(ApiError::invalid_field(
                "session_id",
                "this key is limited to some sessions: its webhooks must name one of them",
            ))
        }
        None => None,
    };
    let org_id = session.as_ref().map_or_else(|| caller.home_org(), |s| s.org_id.clone());
    let session_id = session.map(|s| s.id);
    let description = checked_description(body.description)?;
    // Last: checking the URL may take a DNS lookup.
    let url = checked_url(&state, &body.url).await?;
    let new = NewWebhook { org_id, url, events, session_id, description, secret: generate_secret() };
    let webhook = state.engine.store().create_webhook(new, state.engine.now()).await?;
    // The host only: a URL's path or query may carry a token.
    let host =
        url::Url::parse(&webhook.url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    tracing::info!(webhook_id = %webhook.id, host, "webhook created");
    state.deliverer.wake();
    Ok((StatusCode::CREATED, Json(shown(&webhook, true))))
}

#[utoipa::path(operation_id = "webhooks_list", get, path = "/webhooks", tag = "webhooks", responses((status = 200, body = WebhookList, description = "OK"), ApiKeyRequired))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
) -> Result<Json<Value>, ApiError> {
    let webhooks = state.engine.store().list_webhooks(caller.org()).await?;
    let shown: Vec<Value> =
        webhooks.iter().filter(|w| sees_webhook(&caller, w)).map(|w| shown(w, false)).collect();
    Ok(Json(json!({ "data": shown })))
}

#[utoipa::path(operation_id = "webhooks_get", get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Webhook id (`wh_…`)")), responses((status = 200, body = Webhook, description = "OK"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&state, &caller, &id).await?;
    let webhook = found(state.engine.store().get_webhook(&id).await?, &id)?;
    Ok(Json(shown(&webhook, false)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"enabled": true, "events": ["message.received"]}))]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateWebhook {
    #[schema(value_type = Option<WebhookUrl>)]
    url: Option<String>,
    #[schema(value_type = Option<Vec<wagate_core::EventFilter>>, min_items = 1, max_items = 50)]
    events: Option<Vec<String>>,
    enabled: Option<bool>,
    /// `null` clears it.
    #[schema(max_length = 500)]
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
}

/// Tells a field set to `null` (Some(None)) from a missing one (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(operation_id = "webhooks_update", patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Webhook id (`wh_…`)")), request_body = UpdateWebhook,
    responses((status = 200, body = Webhook, description = "OK"), (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&state, &caller, &id).await?;
    let events = body.events.map(checked_filters).transpose()?;
    let description = body.description.map(checked_description).transpose()?;
    let url = match body.url {
        Some(url) => Some(checked_url(&state, &url).await?),
        None => None,
    };
    let change = WebhookChange { url, events, description, enabled: body.enabled };
    let webhook = found(state.engine.store().update_webhook(&id, change, state.engine.now()).await?, &id)?;
    state.deliverer.wake();
    Ok(Json(shown(&webhook, false)))
}

#[utoipa::path(operation_id = "webhooks_delete", delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses((status = 204, description = "Deleted with its deliveries"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = webhook_id(&state, &caller, &id).await?;
    if state.engine.store().delete_webhook(&id).await? {
        tracing::info!(webhook_id = %id, "webhook deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(webhook_not_found(id.as_str()))
    }
}

/// A new secret; the old one keeps signing alongside for `webhooks.secret_overlap_ms`.
#[utoipa::path(operation_id = "webhooks_rotate_secret", post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses((status = 200, body = WebhookWithSecret, description = "The new secret, shown only now; the old one signs alongside until `previous_secret_expires_at`"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&state, &caller, &id).await?;
    let now = state.engine.now();
    let overlap = chrono::Duration::milliseconds(
        i64::try_from(state.config.webhooks.secret_overlap_ms).unwrap_or(i64::MAX),
    );
    let webhook =
        state.engine.store().rotate_webhook_secret(&id, generate_secret(), now + overlap, now).await?;
    let webhook = found(webhook, &id)?;
    let mut shown = shown(&webhook, true);
    shown["previous_secret_expires_at"] = json!(webhook.previous_secret.as_ref().map(|(_, until)| until));
    Ok(Json(shown))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeliveriesQuery {
    #[param(value_type = Option<wagate_core::DeliveryStatus>)]
    status: Option<String>,
    #[param(value_type = Option<DeliveryId>)]
    before: Option<String>,
    /// 1 to 500; 50 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(operation_id = "webhooks_deliveries", get, path = "/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path, description = "Webhook id (`wh_…`)"), DeliveriesQuery),
    responses((status = 200, body = DeliveryList, description = "Newest first, each with its attempts"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn deliveries(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Value>, ApiError> {
    let webhook_id = webhook_id(&state, &caller, &id).await?;
    found(state.engine.store().get_webhook(&webhook_id).await?, &webhook_id)?;
    let status = query
        .status
        .map(|s| {
            DeliveryStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid_field("status", "must be pending, delivered or failed"))
        })
        .transpose()?;
    let before = query
        .before
        .map(|b| DeliveryId::parse(&b).map_err(|e| ApiError::invalid_field("before", e)))
        .transpose()?;
    let limit = page_limit(query.limit, 50, 500)?;
    let deliveries =
        state.engine.store().list_deliveries(DeliveryQuery { webhook_id, status, before, limit }).await?;
    let next_before = (deliveries.len() == limit as usize).then(|| deliveries.last().map(|d| d.id)).flatten();
    Ok(Json(json!({ "data": deliveries, "next_before": next_before })))
}

fn delivery_not_found(id: &str) -> ApiError {
    ApiError::not_found(ErrorCode::DeliveryNotFound, format!("this webhook has no delivery {id:?}"))
}

#[utoipa::path(operation_id = "webhooks_delivery", get, path = "/webhooks/{id}/deliveries/{delivery_id}", tag = "webhooks", params(("id" = String, Path, description = "Webhook id (`wh_…`)"), ("delivery_id" = String, Path, description = "Delivery id (`dlv_…`)")),
    responses((status = 200, body = Delivery, description = "OK"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn delivery(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let webhook_id = webhook_id(&state, &caller, &id).await?;
    let delivery_id = DeliveryId::parse(&delivery).map_err(|_| delivery_not_found(&delivery))?;
    let found = state.engine.store().get_delivery(&webhook_id, delivery_id).await?;
    Ok(Json(json!(found.ok_or_else(|| delivery_not_found(&delivery))?)))
}

/// Makes one delivery due now, whatever its status; a failed one gets one more attempt.
#[utoipa::path(operation_id = "webhooks_retry", post, path = "/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks", params(("id" = String, Path, description = "Webhook id (`wh_…`)"), ("delivery_id" = String, Path, description = "Delivery id (`dlv_…`)")),
    responses((status = 202, body = Delivery, description = "Due now"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn retry(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let webhook_id = webhook_id(&state, &caller, &id).await?;
    let delivery_id = DeliveryId::parse(&delivery).map_err(|_| delivery_not_found(&delivery))?;
    let retried = state.engine.store().retry_delivery(&webhook_id, delivery_id, state.engine.now()).await?;
    let retried = retried.ok_or_else(|| delivery_not_found(&delivery))?;
    state.deliverer.wake();
    Ok((StatusCode::ACCEPTED, Json(json!(retried))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"since": "2026-01-01T00:00:00Z"}))]
#[serde(deny_unknown_fields)]
pub(super) struct Replay {
    /// An event id or an RFC 3339 time; inclusive.
    #[schema(value_type = EventBoundSchema)]
    since: String,
    /// An event id or an RFC 3339 time; inclusive. Up to the newest event when absent.
    #[schema(value_type = Option<EventBoundSchema>)]
    until: Option<String>,
}

/// How the document shows a webhook's URL: `http(s)://`, a host name, a port, a path; at most
/// 2,048 characters.
struct WebhookUrl;

impl utoipa::PartialSchema for WebhookUrl {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(2048))
            .pattern(Some(
                r"^[hH][tT][tT][pP][sS]?://[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z][A-Za-z0-9-]*)*(?::[0-9]{1,4})?(?:/[A-Za-z0-9._~/-]*)?$",
            ))
            .into()
    }
}

impl utoipa::ToSchema for WebhookUrl {}

/// How the document shows where a replay starts or ends: an event id or an RFC 3339 time.
struct EventBoundSchema;

impl utoipa::PartialSchema for EventBoundSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
        let time = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
        OneOfBuilder::new().item(<EventId as utoipa::PartialSchema>::schema()).item(time).into()
    }
}

impl utoipa::ToSchema for EventBoundSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "EventBound".into()
    }
}

fn event_bound(field: &str, raw: &str) -> Result<EventBound, ApiError> {
    if raw.starts_with("evt_") {
        return EventId::parse(raw).map(EventBound::Id).map_err(|e| ApiError::invalid_field(field, e));
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| EventBound::Time(t.to_utc()))
        .map_err(|_| ApiError::invalid_field(field, "must be an event id (evt_…) or an RFC 3339 time"))
}

/// Queues the webhook's events in a range again (new deliveries with the same `webhook-id`s).
#[utoipa::path(operation_id = "webhooks_replay", post, path = "/webhooks/{id}/replay", tag = "webhooks", params(("id" = String, Path, description = "Webhook id (`wh_…`)")), request_body = Replay,
    responses((status = 202, body = Replayed, description = "Accepted"), (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "The webhook is disabled", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn replay(
    State(state): State<AppState>,
    caller: Caller<scope::ManageWebhooks>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Replay>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let webhook_id = webhook_id(&state, &caller, &id).await?;
    let since = event_bound("since", &body.since)?;
    let until = body.until.as_deref().map(|u| event_bound("until", u)).transpose()?;
    let webhook = found(state.engine.store().get_webhook(&webhook_id).await?, &webhook_id)?;
    if !webhook.enabled {
        return Err(ApiError::conflict(
            ErrorCode::WebhookDisabled,
            "the webhook is disabled; enable it first",
        ));
    }
    let replayed =
        match state.engine.store().replay_events(&webhook_id, since, until, state.engine.now()).await {
            Err(StoreError::NotFound(_)) => return Err(webhook_not_found(webhook_id.as_str())),
            other => other?,
        };
    state.deliverer.wake();
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({ "queued": replayed.count, "first_event_id": replayed.first, "last_event_id": replayed.last }),
        ),
    ))
}
