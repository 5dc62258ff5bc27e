//! Sending messages and reading them back.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use wagate_core::{Direction, EventData, Jid, Message, MessageContent, MessageId, Recipient, ReplyContext};
use wagate_store::{MessageQuery, NewOutbound, StoreError};

use super::compose::{self, scheduled_time, TemplateRef};
use super::openapi::{ApiKeyRequired, ErrorBody, MessageList};
use super::{page_limit, visible_message, visible_session, ApiError, ApiJson, ApiQuery, ErrorCode};
use crate::auth::{scope, Caller};
use crate::engine::{AcceptError, CommitError};
use crate::AppState;

impl From<AcceptError> for ApiError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::SessionNotFound => {
                ApiError::not_found(ErrorCode::SessionNotFound, "session not found")
            }
            AcceptError::Commit(CommitError::ShuttingDown) => ApiError::shutting_down(),
            AcceptError::Commit(cause) => ApiError::internal(cause),
        }
    }
}

compose::content_body! {
    kinds: compose::SendKind;
    #[derive(Deserialize, utoipa::ToSchema)]
    #[schema(example = json!({"to": "+1 555 000 2222", "type": "text", "text": {"body": "Hi Bob"}}))]
    #[serde(deny_unknown_fields)]
    pub(super) struct SendRequest {
        to: Recipient,
    }
    then {
        /// With `"type":"template"`: which template, and the values of its placeholders.
        template: Option<TemplateRef>,
        /// Reply to (quote) a message: `{"message_id"}`, wagate's id or WhatsApp's.
        context: Option<ContextBody>,
        /// Numbers the text or caption mentions (WhatsApp shows `@name` where the text has `@number`).
        #[schema(value_type = Option<Vec<wagate_core::PhoneNumber>>)]
        mentions: Option<Vec<String>>,
        /// RFC 3339 time to send at (the message is `scheduled` until then); a past time means now.
        #[schema(format = DateTime)]
        scheduled_at: Option<String>,
    }
}

/// `"context": {"message_id"}` of a reply.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ContextBody {
    message_id: String,
}

/// What a reply quotes: a message of the same session by wagate's id (it must have been sent
/// or received, so that WhatsApp knows it), or any by WhatsApp's id.
async fn reply_context(
    state: &AppState,
    session: &wagate_core::SessionId,
    message_id: &str,
) -> Result<ReplyContext, ApiError> {
    let field = "context.message_id";
    let Ok(id) = MessageId::parse(message_id) else {
        if message_id.trim().is_empty() {
            return Err(ApiError::invalid_field(field, "must not be empty"));
        }
        return Ok(ReplyContext { message_id: None, wa_id: Some(message_id.to_owned()) });
    };
    match state.engine.store().get_message(&id).await? {
        Some(message) if &message.session_id == session => match message.wa_id {
            Some(wa_id) => Ok(ReplyContext { message_id: Some(id), wa_id: Some(wa_id) }),
            None => Err(ApiError::invalid_field(
                field,
                "that message has not been sent yet, so it cannot be quoted",
            )),
        },
        _ => Err(ApiError::invalid_field(field, "names no message of this session")),
    }
}

/// The JIDs a message mentions; only text and captioned media carry mentions.
fn mentioned(content: &MessageContent, mentions: Vec<String>) -> Result<Vec<String>, ApiError> {
    if mentions.is_empty() {
        return Ok(mentions);
    }
    let captioned = content.media_part().is_some_and(|(kind, _)| kind.has_caption());
    if content.kind() != "text" && !captioned {
        return Err(ApiError::invalid_field(
            "mentions",
            format!("a {} message cannot mention anyone", content.kind()),
        ));
    }
    mentions
        .iter()
        .enumerate()
        .map(|(i, raw)| match Jid::parse_recipient(raw) {
            Ok(jid) if jid.phone().is_some() => Ok(jid.to_string()),
            _ => Err(ApiError::invalid_field(&format!("mentions[{i}]"), "must be a phone number")),
        })
        .collect()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SendQuery {
    #[serde(default)]
    wait: bool,
}

const MAX_IDEMPOTENCY_KEY: usize = 255;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.trim().is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => {
            Ok(Some(key.trim().to_owned()))
        }
        _ => Err(ApiError::invalid_field(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )),
    }
}

#[utoipa::path(operation_id = "messages_send", post, path = "/sessions/{id}/messages", tag = "messages", params(("id" = String, Path, description = "Session id"), SendQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "A repeat with the same key returns the first message: 1 to 255 visible ASCII characters", max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$")),
    request_body = SendRequest,
    responses((status = 202, body = Message, description = "Queued (committed)"), (status = 200, body = Message, description = "With `wait=true`: the send result"),
        (status = 400, description = "Malformed JSON", body = ErrorBody), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody),
        (status = 429, description = "The organization's daily message quota is used up (`quota_exceeded`); `Retry-After` says until when", body = ErrorBody), (status = 504, description = "`wait=true` timed out; the message stays queued", body = ErrorBody)))]
pub(super) async fn send(
    State(state): State<AppState>,
    caller: Caller<scope::SendMessages>,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<SendQuery>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<SendRequest>,
) -> Result<Response, ApiError> {
    let session = super::owned_session(&state, &caller, &raw).await?;
    let to = body.to.0.clone();
    let content = compose::send_content(&state, &session, body.take_content(), body.template).await?;
    super::orgs::check_daily_quota(&state, &session.org_id, 1).await?;
    let session_id = session.id;
    let context = match body.context {
        Some(_) if content.message_kind().acts_on_a_message() => {
            return Err(ApiError::invalid_field(
                "context",
                format!("{0} names its message in {0}.message_id", content.kind()),
            ));
        }
        Some(context) => Some(reply_context(&state, &session_id, &context.message_id).await?),
        None => None,
    };
    let mentions = mentioned(&content, body.mentions.unwrap_or_default())?;
    let scheduled_at =
        body.scheduled_at.as_deref().map(|at| scheduled_time(at, state.engine.now())).transpose()?;
    let new = NewOutbound {
        session_id,
        org_id: session.org_id,
        to,
        content,
        idempotency_key: idempotency_key(&headers)?,
        scheduled_at,
        context,
        mentions,
    };
    // Subscribe before accepting so the result cannot slip past.
    let mut events = query.wait.then(|| state.engine.subscribe());
    let accepted = state.engine.accept(new).await?;
    let mut message = accepted.message;
    // A send scheduled for later has no result to wait for yet.
    if message.status == wagate_core::MessageStatus::Scheduled {
        events = None;
    }
    let mut status = StatusCode::ACCEPTED;
    if let Some(events) = events.as_mut() {
        let timeout = Duration::from_millis(state.config.api.wait_timeout_ms);
        tokio::select! {
            waited = tokio::time::timeout(timeout, wait_for_result(&state, &message, events)) => match waited {
                Ok(result) => {
                    message = result?;
                    status = StatusCode::OK;
                }
                Err(_) => {
                    return Err(ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        ErrorCode::WaitTimeout,
                        "no send result yet; the message stays queued and will be sent",
                    )
                    .with_details(json!({ "message": message })))
                }
            },
            // The server is stopping: the message is committed and queued, so answer as a
            // send without `wait` would rather than hold the shutdown up.
            () = state.stopping.cancelled() => {}
        }
    }
    let mut response = (status, Json(message)).into_response();
    if !accepted.created {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Waits until the message is sent or failed; returns it as stored then.
async fn wait_for_result(
    state: &AppState,
    message: &Message,
    events: &mut tokio::sync::broadcast::Receiver<wagate_core::Event>,
) -> Result<Message, ApiError> {
    let store = state.engine.store();
    let stored = |m: Option<Message>| {
        m.ok_or_else(|| ApiError::not_found(ErrorCode::MessageNotFound, "message was deleted"))
    };
    if message.status.is_send_result() {
        return stored(store.get_message(&message.id).await?);
    }
    loop {
        match events.recv().await {
            Ok(event) => {
                let done = matches!(&event.data, EventData::MessageStatus(change)
                    if change.message_id == message.id && change.status.is_send_result());
                if done {
                    return stored(store.get_message(&message.id).await?);
                }
            }
            // Missed some events: the store knows.
            Err(RecvError::Lagged(_)) => {
                let current = stored(store.get_message(&message.id).await?)?;
                if current.status.is_send_result() {
                    return Ok(current);
                }
            }
            Err(RecvError::Closed) => return Err(ApiError::shutting_down()),
        }
    }
}

#[utoipa::path(operation_id = "messages_get", get, path = "/messages/{id}", tag = "messages", params(("id" = String, Path, description = "Message id (`msg_…`)")),
    responses((status = 200, body = Message, description = "With its `status_history`"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    Path(raw): Path<String>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(visible_message(&state, &caller, &raw).await?))
}

/// Cancels a message while it is still `scheduled`.
#[utoipa::path(operation_id = "messages_cancel", delete, path = "/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id (`msg_…`)")),
    responses((status = 200, body = Message, description = "Canceled: it will not be sent"),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "The message is not scheduled (any more)", body = ErrorBody)))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: Caller<scope::SendMessages>,
    Path(raw): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let not_found = || ApiError::not_found(ErrorCode::MessageNotFound, format!("no message with id {raw:?}"));
    let id = visible_message(&state, &caller, &raw).await?.id;
    match state.engine.cancel_scheduled(&id).await {
        Ok(message) => Ok(Json(message)),
        Err(StoreError::NotFound(_)) => Err(not_found()),
        Err(StoreError::IllegalTransition(e)) => Err(ApiError::conflict(
            ErrorCode::MessageNotScheduled,
            format!("only a scheduled message can be canceled; this one is {}", e.from.as_str()),
        )
        .with_details(json!({ "status": e.from }))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    #[param(value_type = Option<Recipient>)]
    chat: Option<String>,
    #[param(value_type = Option<wagate_core::Direction>)]
    direction: Option<String>,
    #[param(value_type = Option<MessageId>)]
    before: Option<String>,
    /// 1 to 500; 50 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(operation_id = "messages_list", get, path = "/sessions/{id}/messages", tag = "messages", params(("id" = String, Path, description = "Session id"), ListQuery),
    responses((status = 200, body = MessageList, description = "Newest first"), ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let session_id = visible_session(&state, &caller, &raw).await?.id;
    let chat = query
        .chat
        .map(|c| {
            Jid::parse_recipient(&c).map(|j| j.to_string()).map_err(|e| ApiError::invalid_field("chat", e))
        })
        .transpose()?;
    let direction = query
        .direction
        .map(|d| {
            Direction::parse(&d).ok_or_else(|| ApiError::invalid_field("direction", "must be in or out"))
        })
        .transpose()?;
    let before = query
        .before
        .map(|b| MessageId::parse(&b).map_err(|e| ApiError::invalid_field("before", e)))
        .transpose()?;
    let limit = page_limit(query.limit, 50, 500)?;
    let messages = state
        .engine
        .store()
        .list_messages(MessageQuery { session_id, chat, direction, before, limit })
        .await?;
    let next_before =
        (messages.len() == limit as usize).then(|| messages.last().map(|m| m.id.clone())).flatten();
    Ok(Json(json!({ "data": messages, "next_before": next_before })))
}
