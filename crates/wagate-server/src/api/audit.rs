//! `GET /v1/audit`: the audit log, newest first. An organization's admin reads its own
//! organization's entries; the gateway's admin key reads every entry.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use wagate_core::{AuditEntry, AuditId, OrgId};
use wagate_store::AuditQuery;

use super::openapi::{ApiKeyRequired, ErrorBody};
use super::{page_limit, ApiError, ApiQuery};
use crate::auth::{scope, Caller};
use crate::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditFilter {
    /// Only this organization's entries (the gateway's admin key; an organization's admin
    /// always reads its own).
    #[param(value_type = Option<OrgId>)]
    org_id: Option<String>,
    /// Only this key id or JWT subject.
    actor_id: Option<String>,
    /// Only this method (`POST`, `DELETE`, …).
    method: Option<String>,
    /// Only this route template, such as `/v1/sessions/{id}`.
    route: Option<String>,
    /// Only this answer status.
    #[param(minimum = 0, maximum = 65535)]
    status: Option<u16>,
    /// RFC 3339; entries at or after it.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339; entries at or before it.
    #[param(format = DateTime)]
    until: Option<String>,
    /// The `next_before` of the previous page.
    #[param(value_type = Option<AuditId>)]
    before: Option<String>,
    /// 1 to 1000; 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AuditPage {
    pub data: Vec<AuditEntry>,
    /// Where the next (older) page starts; null on the last page.
    pub next_before: Option<AuditId>,
}

fn time(field: &str, raw: Option<String>) -> Result<Option<wagate_core::Timestamp>, ApiError> {
    raw.map(|raw| {
        chrono::DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.to_utc())
            .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 time"))
    })
    .transpose()
}

#[utoipa::path(operation_id = "audit_list", get, path = "/audit", tag = "audit", params(AuditFilter),
    responses((status = 200, body = AuditPage, description = "Newest first"), ApiKeyRequired, (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::Admin>,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Json<AuditPage>, ApiError> {
    let named = filter
        .org_id
        .map(|raw| OrgId::parse(&raw).map_err(|e| ApiError::invalid_field("org_id", e)))
        .transpose()?;
    // A member reads its own organization's entries, whatever it names.
    let org_id = match caller.org() {
        Some(own) => Some(own.clone()),
        None => named,
    };
    let before = filter
        .before
        .map(|raw| AuditId::parse(&raw).map_err(|e| ApiError::invalid_field("before", e)))
        .transpose()?;
    let limit = page_limit(filter.limit, 100, 1000)?;
    let query = AuditQuery {
        org_id,
        actor_id: filter.actor_id,
        method: filter.method.map(|m| m.to_uppercase()),
        route: filter.route,
        status: filter.status,
        since: time("since", filter.since)?,
        until: time("until", filter.until)?,
        before,
        limit,
    };
    let data = state.engine.store().list_audit(query).await?;
    let next_before = (data.len() == limit as usize).then(|| data.last().and_then(|e| e.id)).flatten();
    Ok(Json(AuditPage { data, next_before }))
}
