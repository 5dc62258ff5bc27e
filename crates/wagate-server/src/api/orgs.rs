//! `/v1/orgs`: the organizations (tenants) of the gateway and their quotas, for the gateway's
//! admin key only; and the daily message quota every send path checks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use wagate_core::{Org, OrgId, Quotas};
use wagate_store::{OrgChange, StoreError};

use super::openapi::{ApiKeyRequired, ErrorBody};
use super::{ApiError, ApiJson, ErrorCode};
use crate::auth::{org_not_found, scope, Caller};
use crate::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct OrgList {
    pub data: Vec<Org>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "acme", "name": "Acme Inc.", "quotas": {"sessions": 5, "messages_per_day": 10000}}))]
#[serde(deny_unknown_fields)]
pub(super) struct CreateOrg {
    /// `[a-z0-9][a-z0-9_-]{0,63}`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    id: String,
    /// Defaults to the id.
    #[schema(max_length = 200, pattern = "\\S")]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::error::object")]
    quotas: Quotas,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"quotas": {"sessions": 10, "messages_per_day": null}}))]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateOrg {
    #[schema(max_length = 200, pattern = "\\S")]
    name: Option<String>,
    /// Replaces every quota (an absent one becomes unlimited).
    #[serde(default, deserialize_with = "super::error::object")]
    quotas: Option<Quotas>,
}

fn checked_name(name: String) -> Result<String, ApiError> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid_field("name", "must be 1 to 200 characters"));
    }
    Ok(name)
}

fn org_id(raw: &str) -> Result<OrgId, ApiError> {
    OrgId::parse(raw).map_err(|_| org_not_found(raw))
}

#[utoipa::path(operation_id = "orgs_create", post, path = "/orgs", tag = "organizations", request_body = CreateOrg,
    responses((status = 201, body = Org, description = "Created"), (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired,
        (status = 409, description = "An organization with that id exists", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<Org>), ApiError> {
    let id = OrgId::parse(&body.id).map_err(|e| ApiError::invalid_field("id", e))?;
    let name = checked_name(body.name.unwrap_or_else(|| body.id.clone()))?;
    match state.engine.store().create_org(id, name, body.quotas, state.engine.now()).await {
        Ok(org) => Ok((StatusCode::CREATED, Json(org))),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            ErrorCode::OrgExists,
            format!("an organization with id {:?} exists", body.id),
        )),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(operation_id = "orgs_list", get, path = "/orgs", tag = "organizations",
    responses((status = 200, body = OrgList, description = "By id"), ApiKeyRequired))]
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
) -> Result<Json<OrgList>, ApiError> {
    Ok(Json(OrgList { data: state.engine.store().list_orgs().await? }))
}

#[utoipa::path(operation_id = "orgs_get", get, path = "/orgs/{id}", tag = "organizations", params(("id" = String, Path, description = "Organization id")),
    responses((status = 200, body = Org, description = "OK"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
    Path(raw): Path<String>,
) -> Result<Json<Org>, ApiError> {
    let id = org_id(&raw)?;
    state.engine.store().get_org(&id).await?.map(Json).ok_or_else(|| org_not_found(&raw))
}

#[utoipa::path(operation_id = "orgs_update", patch, path = "/orgs/{id}", tag = "organizations", params(("id" = String, Path, description = "Organization id")), request_body = UpdateOrg,
    responses((status = 200, body = Org, description = "Updated"), (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired,
        (status = 404, description = "Not found", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn update(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> Result<Json<Org>, ApiError> {
    let id = org_id(&raw)?;
    let change = OrgChange { name: body.name.map(checked_name).transpose()?, quotas: body.quotas };
    let updated = state.engine.store().update_org(&id, change, state.engine.now()).await?;
    state.engine.org_changed(&id);
    updated.map(Json).ok_or_else(|| org_not_found(&raw))
}

#[utoipa::path(operation_id = "orgs_delete", delete, path = "/orgs/{id}", tag = "organizations", params(("id" = String, Path, description = "Organization id")),
    responses((status = 204, description = "Deleted, with its API keys"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "It still has sessions, webhooks, templates or media files (`org_not_empty`), or it is `default`", body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = org_id(&raw)?;
    if id.as_str() == OrgId::DEFAULT {
        return Err(ApiError::conflict(ErrorCode::OrgNotEmpty, "the default organization cannot be deleted"));
    }
    let deleted = state.engine.store().delete_org(&id).await;
    state.engine.org_changed(&id);
    match deleted {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(org_not_found(&raw)),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            ErrorCode::OrgNotEmpty,
            "the organization still has sessions, webhooks, templates or media files; delete them first",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Refuses `count` more messages when the organization's daily quota (per UTC day) has no
/// room for them: 429 `quota_exceeded`, with `Retry-After` until the next UTC midnight.
/// Sends that race each other may pass it together: the quota is a budget, not a lock.
pub(super) async fn check_daily_quota(state: &AppState, org: &OrgId, count: u64) -> Result<(), ApiError> {
    let Some(quota) = state.engine.daily_quota(org).await? else {
        return Ok(());
    };
    let now = state.engine.now();
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let sent = state.engine.store().count_sent_since(org, midnight).await?;
    if sent.saturating_add(count) <= u64::from(quota) {
        return Ok(());
    }
    let retry_after = (midnight + chrono::Duration::days(1) - now).num_seconds().max(1);
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::QuotaExceeded,
        format!("the organization may send {quota} messages per day (UTC) and has used them"),
    )
    .with_details(serde_json::json!({ "quota": "messages_per_day", "limit": quota }))
    .with_retry_after(u64::try_from(retry_after).unwrap_or(1)))
}
