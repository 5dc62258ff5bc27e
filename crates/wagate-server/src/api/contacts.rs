//! `/v1/sessions/{id}/contacts` and `/chats`: who a session can reach and what it talks about.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wagate_core::PhoneNumber;

use super::openapi::{ApiKeyRequired, ChatList, ContactList, ErrorBody, NumberChecks};
use super::{page_limit, visible_session, ApiError, ApiJson, ApiQuery};
use crate::auth::{scope, Caller};
use crate::AppState;

/// Numbers a check takes at once (WhatsApp answers such a batch in one query).
const MAX_CHECK: usize = 500;
const MAX_PAGE: u32 = 1000;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"phones": ["+15551234567", "15557654321"]}))]
#[serde(deny_unknown_fields)]
pub(super) struct CheckNumbers {
    /// Phone numbers in international form (`+` optional).
    #[schema(value_type = Vec<wagate_core::PhoneNumber>, min_items = 1, max_items = 500)]
    phones: Vec<String>,
}

#[utoipa::path(operation_id = "contacts_check", post, path = "/sessions/{id}/contacts/check", tag = "contacts",
    params(("id" = String, Path, description = "Session id")), request_body = CheckNumbers,
    responses((status = 200, body = NumberChecks, description = "Which numbers have WhatsApp, in the order asked"),
        ApiKeyRequired, (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "The session is not connected on this node", body = ErrorBody),
        (status = 422, description = "A number is not valid, or too many", body = ErrorBody),
        (status = 503, description = "WhatsApp did not answer; try again", body = ErrorBody)))]
pub(super) async fn check(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CheckNumbers>,
) -> Result<Json<Value>, ApiError> {
    let session = visible_session(&state, &caller, &raw).await?;
    if body.phones.is_empty() || body.phones.len() > MAX_CHECK {
        return Err(ApiError::invalid_field("phones", format!("must list 1 to {MAX_CHECK} numbers")));
    }
    let phones = body
        .phones
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            PhoneNumber::parse(raw)
                .map_err(|e| ApiError::invalid_field(&format!("phones[{i}]"), format!("{raw:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let session = super::connected(session)?.id;
    let checks = state.engine.check_numbers(&session, &phones).await??;
    let data: Vec<Value> = checks
        .iter()
        .map(|c| {
            let mut shown = json!({ "phone": c.phone.as_str(), "on_whatsapp": c.on_whatsapp });
            if let Some(jid) = &c.jid {
                shown["jid"] = json!(jid.to_string());
            }
            if let Some(lid) = &c.lid {
                shown["lid"] = json!(lid.to_string());
            }
            shown
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ContactQuery {
    /// The last JID of the previous page.
    after: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[utoipa::path(operation_id = "contacts_list", get, path = "/sessions/{id}/contacts", tag = "contacts",
    params(("id" = String, Path, description = "Session id"), ContactQuery),
    responses((status = 200, body = ContactList, description = "Contacts by JID"), ApiKeyRequired,
        (status = 404, description = "No such session", body = ErrorBody), (status = 422, description = "Bad limit", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ContactQuery>,
) -> Result<Json<Value>, ApiError> {
    let session = visible_session(&state, &caller, &raw).await?.id;
    let limit = page_limit(query.limit, 100, MAX_PAGE)?;
    let contacts = state.engine.store().list_contacts(&session, query.after.as_deref(), limit).await?;
    let next = (contacts.len() == limit as usize).then(|| contacts.last().map(|c| c.jid.clone())).flatten();
    Ok(Json(json!({ "data": contacts, "next_after": next })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ChatQuery {
    /// How many to skip.
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    offset: Option<u32>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[utoipa::path(operation_id = "chats_list", get, path = "/sessions/{id}/chats", tag = "contacts",
    params(("id" = String, Path, description = "Session id"), ChatQuery),
    responses((status = 200, body = ChatList, description = "Chats, most recent activity first"), ApiKeyRequired,
        (status = 404, description = "No such session", body = ErrorBody), (status = 422, description = "Bad limit", body = ErrorBody)))]
pub(super) async fn chats(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ChatQuery>,
) -> Result<Json<Value>, ApiError> {
    let session = visible_session(&state, &caller, &raw).await?.id;
    let limit = page_limit(query.limit, 100, MAX_PAGE)?;
    let chats = state.engine.store().list_chats(&session, query.offset.unwrap_or(0), limit).await?;
    Ok(Json(json!({ "data": chats })))
}
