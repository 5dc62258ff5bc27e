//! `/v1/sim`: acting as the phones and contacts of the simulated network.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wagate_connect::sim::{Faults, InboundRequest, SimError};
use wagate_core::{PhoneNumber, SessionId};

use super::compose;
use super::openapi::{ApiKeyRequired, ErrorBody, SimInjected, SimLinked};
use super::{ApiError, ApiJson, ErrorCode};
use crate::auth::{scope, Caller};
use crate::AppState;

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        let message = e.to_string();
        match e {
            SimError::UnknownCode => ApiError::not_found(ErrorCode::CodeNotFound, message),
            SimError::WrongPhone(_) => ApiError::invalid_field("phone", message),
            SimError::PhoneInUse { .. } => ApiError::conflict(ErrorCode::PhoneInUse, message),
            SimError::NotLinked => ApiError::conflict(ErrorCode::SessionNotLinked, message),
            SimError::NotConnected => ApiError::conflict(ErrorCode::SessionNotConnected, message),
            SimError::Timeout => ApiError::new(StatusCode::GATEWAY_TIMEOUT, ErrorCode::Timeout, message),
        }
    }
}

fn network(state: &AppState) -> Result<&wagate_connect::sim::SimNetwork, ApiError> {
    state
        .sim
        .as_deref()
        .ok_or_else(|| ApiError::not_found(ErrorCode::RouteNotFound, "the sim connector is disabled"))
}

fn phone(field: &str, raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw).map_err(|e| ApiError::invalid_field(field, e))
}

fn existing_session(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).map_err(|e| ApiError::invalid_field("session_id", e))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "<the code from GET /v1/sessions/{id}/qr>", "phone": "15550001111"}))]
#[serde(deny_unknown_fields)]
pub(super) struct LinkRequest {
    code: String,
    #[schema(value_type = PhoneNumber)]
    phone: String,
}

#[utoipa::path(operation_id = "sim_scan", post, path = "/sim/scan", tag = "sim", request_body = LinkRequest,
    responses((status = 200, body = SimLinked, description = "The session showing that QR code is linked to the phone"), ApiKeyRequired, (status = 404, description = "No session shows this code", body = ErrorBody), (status = 409, description = "Wrong state or duplicate", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn scan(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
    ApiJson(body): ApiJson<LinkRequest>,
) -> Result<Json<Value>, ApiError> {
    let phone = phone("phone", &body.phone)?;
    let session = network(&state)?.scan(body.code.trim(), phone)?;
    Ok(Json(json!({ "session_id": session })))
}

#[utoipa::path(operation_id = "sim_pair", post, path = "/sim/pair", tag = "sim", request_body = LinkRequest,
    responses((status = 200, body = SimLinked, description = "OK"), ApiKeyRequired, (status = 404, description = "No session shows this code", body = ErrorBody), (status = 409, description = "Wrong state or duplicate", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn pair(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
    ApiJson(body): ApiJson<LinkRequest>,
) -> Result<Json<Value>, ApiError> {
    let phone = phone("phone", &body.phone)?;
    let session = network(&state)?.pair(body.code.trim(), phone)?;
    Ok(Json(json!({ "session_id": session })))
}

compose::content_body! {
    kinds: wagate_core::MessageKind;
    /// A message from `from` to the session, with its content as a send takes it. Messages it
    /// reacts to, edits or revokes are named by WhatsApp's id (`wa_id`).
    #[derive(Deserialize, utoipa::ToSchema)]
    #[schema(example = json!({"session_id": "bob", "from": "447700900123", "type": "text", "text": {"body": "hello from London"}}))]
    #[serde(deny_unknown_fields)]
    pub(super) struct InboundBody {
        #[schema(value_type = SessionId)]
        session_id: String,
        #[schema(value_type = PhoneNumber)]
        from: String,
        /// WhatsApp's id for the message; send the same id twice to see deduplication.
        #[schema(min_length = 1, max_length = 128)]
        id: Option<String>,
    }
}

#[utoipa::path(operation_id = "sim_inbound", post, path = "/sim/inbound", tag = "sim", request_body = InboundBody,
    responses((status = 200, body = SimInjected, description = "Stored"), (status = 202, body = SimInjected, description = "Pending: the session is offline"),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Wrong state or duplicate", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn inbound(
    State(state): State<AppState>,
    caller: Caller<scope::ManageSessions>,
    ApiJson(mut body): ApiJson<InboundBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    existing_session(&body.session_id)?;
    let session = super::visible_session(&state, &caller, &body.session_id).await?;
    let from = phone("from", &body.from)?;
    let content = compose::inbound_content(&state, &session.org_id, body.take_content()).await?;
    if body.id.as_ref().is_some_and(|id| id.is_empty() || id.len() > 128) {
        return Err(ApiError::invalid_field("id", "must be 1 to 128 characters"));
    }
    let session_id = session.id;
    let injected =
        network(&state)?.inject(InboundRequest { session_id, from, content, wa_id: body.id }).await?;
    let (status, word) =
        if injected.stored { (StatusCode::OK, "stored") } else { (StatusCode::ACCEPTED, "pending") };
    Ok((status, Json(json!({ "wa_id": injected.wa_id, "status": word }))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"session_id": "alice", "fail_sends": 2}))]
#[serde(deny_unknown_fields)]
pub(super) struct FaultsBody {
    #[schema(value_type = SessionId)]
    session_id: String,
    #[serde(default)]
    drop_connection: bool,
    #[serde(default)]
    #[schema(value_type = u64, minimum = 0, maximum = 4294967295_u64)]
    fail_sends: u32,
    send_delay_ms: Option<u64>,
}

#[utoipa::path(operation_id = "sim_faults", post, path = "/sim/faults", tag = "sim", request_body = FaultsBody,
    responses((status = 200, description = "The faults in force", body = Object), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Wrong state or duplicate", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn faults(
    State(state): State<AppState>,
    caller: Caller<scope::ManageSessions>,
    ApiJson(body): ApiJson<FaultsBody>,
) -> Result<Json<Value>, ApiError> {
    existing_session(&body.session_id)?;
    let session_id = super::visible_session(&state, &caller, &body.session_id).await?.id;
    let network = network(&state)?;
    network.set_faults(
        &session_id,
        Faults {
            fail_sends: body.fail_sends,
            send_delay: body.send_delay_ms.map(std::time::Duration::from_millis),
        },
    );
    if body.drop_connection {
        network.drop_connection(&session_id)?;
    }
    Ok(Json(
        json!({ "session_id": session_id, "fail_sends": body.fail_sends, "send_delay_ms": body.send_delay_ms }),
    ))
}
