//! `GET /v1/events`: the event log, for polling and replay.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wagate_core::{EventId, EventType, SessionId};
use wagate_store::EventQuery;

use super::openapi::{ApiKeyRequired, ErrorBody, EventList};
use super::{page_limit, ApiError, ApiQuery, ErrorCode};
use crate::auth::{scope, Caller};
use crate::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only events after this one (`evt_…`).
    #[param(value_type = Option<EventId>)]
    after: Option<String>,
    #[param(value_type = Option<SessionId>)]
    session_id: Option<String>,
    /// Comma-separated exact types or `prefix.*`.
    #[param(value_type = Option<wagate_core::EventFilters>)]
    types: Option<String>,
    /// 1 to 1000; 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Refuses to read on after `after` when retention has deleted events after it: the reader
/// would miss them without knowing. `410 events_expired`, with the newest deleted event in
/// `details.expired_through`, after which the log reads on.
pub(super) async fn refuse_expired(state: &AppState, after: Option<EventId>) -> Result<(), ApiError> {
    let Some(after) = after else { return Ok(()) };
    let Some(through) = state.engine.store().events_expired_through().await? else { return Ok(()) };
    if after.seq() >= through.seq() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::GONE,
        ErrorCode::EventsExpired,
        format!(
            "events after {after} up to {through} are older than the event retention and were deleted; \
             read on after {through}, or from the start without after"
        ),
    )
    .with_details(json!({ "expired_through": through })))
}

/// The event types a comma-separated filter selects.
pub(super) fn parse_types(filter: &str) -> Result<Vec<EventType>, ApiError> {
    let mut types = Vec::new();
    for part in filter.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let matched: Vec<EventType> = EventType::ALL.into_iter().filter(|t| t.matches(part)).collect();
        if matched.is_empty() {
            return Err(ApiError::invalid_field("types", format!("{part:?} matches no event type")));
        }
        types.extend(matched);
    }
    types.sort_by_key(|t| t.as_str());
    types.dedup();
    Ok(types)
}

#[utoipa::path(operation_id = "events_list", get, path = "/events", tag = "events", params(ListQuery),
    responses((status = 200, body = EventList, description = "Oldest first"), ApiKeyRequired,
        (status = 410, description = "Retention deleted events after `after` (`events_expired`; read on after `details.expired_through`)", body = ErrorBody),
        (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let after = query
        .after
        .map(|a| EventId::parse(&a).map_err(|e| ApiError::invalid_field("after", e)))
        .transpose()?;
    let session_id = query
        .session_id
        .map(|s| SessionId::parse(&s).map_err(|e| ApiError::invalid_field("session_id", e)))
        .transpose()?;
    let types = query.types.as_deref().map(parse_types).transpose()?.unwrap_or_default();
    let limit = page_limit(query.limit, 100, 1000)?;
    refuse_expired(&state, after).await?;
    let query = EventQuery {
        after,
        org_id: caller.org().cloned(),
        session_id,
        sessions: caller.sessions().map(<[_]>::to_vec),
        types,
        limit,
    };
    let events = state.engine.read_events(query).await?;
    // Where the next poll starts: after the last event seen, or where this one started.
    let next_after = events.last().map(|e| e.id).or(after);
    Ok(Json(json!({ "data": events, "next_after": next_after })))
}
