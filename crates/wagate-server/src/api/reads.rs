//! Read receipts: marking received messages read, so their senders see blue ticks.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use wagate_connect::ReadMessage;
use wagate_core::{Direction, Jid, Message, MessageId, SessionId};
use wagate_store::MessageQuery;

use super::openapi::{ApiKeyRequired, ErrorBody};
use super::{visible_session, ApiError, ApiJson, ErrorCode};
use crate::auth::{scope, Caller};
use crate::AppState;

/// Received messages a chat-wide read looks back over.
const CHAT_READ_LIMIT: u32 = 100;

/// The messages whose senders were told they were read.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Marked {
    /// The chat, as a JID.
    chat: String,
    /// Our ids of the messages marked read, newest first.
    read: Vec<MessageId>,
}

fn message_not_found(raw: &str) -> ApiError {
    ApiError::not_found(ErrorCode::MessageNotFound, format!("no message with id {raw:?}"))
}

/// Sends the read receipts through the session's connection; answers with what was marked.
async fn mark(
    state: &AppState,
    session: &SessionId,
    chat: &Jid,
    messages: Vec<Message>,
) -> Result<Json<Marked>, ApiError> {
    let reads: Vec<ReadMessage> = messages
        .iter()
        .filter_map(|m| {
            let wa_id = m.wa_id.clone()?;
            let author =
                if chat.is_group() { m.from.as_deref().and_then(|f| Jid::parse(f).ok()) } else { None };
            Some(ReadMessage { wa_id, author })
        })
        .collect();
    if !reads.is_empty() {
        state.engine.mark_read(session, chat, &reads).await??;
    }
    Ok(Json(Marked { chat: chat.to_string(), read: messages.into_iter().map(|m| m.id).collect() }))
}

/// Tells the sender of a received message that it was read.
#[utoipa::path(operation_id = "messages_read", post, path = "/messages/{id}/read", tag = "messages",
    params(("id" = String, Path, description = "Id (`msg_…`) of a received message")),
    responses((status = 200, body = Marked, description = "The read receipt was sent"),
        ApiKeyRequired, (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "The message was not received (it is outbound), or its session is not connected on this node", body = ErrorBody),
        (status = 503, description = "WhatsApp did not take the receipt; try again", body = ErrorBody)))]
pub(super) async fn message(
    State(state): State<AppState>,
    caller: Caller<scope::SendMessages>,
    Path(raw): Path<String>,
) -> Result<Json<Marked>, ApiError> {
    let message = super::visible_message(&state, &caller, &raw).await?;
    if message.direction != Direction::In {
        return Err(ApiError::conflict(
            ErrorCode::MessageNotReceived,
            "only a received message can be marked read",
        ));
    }
    let chat = Jid::parse(&message.chat)
        .map_err(|e| ApiError::internal(format!("stored chat {}: {e}", message.chat)))?;
    let session = message.session_id.clone();
    mark(&state, &session, &chat, vec![message]).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"up_to": "msg_01JD7Z6Q3R8V5X2M4N6P8R0T2W"}))]
#[serde(deny_unknown_fields)]
pub(super) struct ReadChat {
    /// The newest message to mark read (`msg_…`, a received message of this chat); without
    /// it, every received message up to now.
    #[schema(value_type = Option<MessageId>)]
    up_to: Option<String>,
}

/// Marks a chat read: its received messages up to one of them (the newest 100 at most).
#[utoipa::path(operation_id = "chats_read", post, path = "/sessions/{id}/chats/{chat}/read", tag = "contacts",
    params(("id" = String, Path, description = "Session id"), ("chat" = wagate_core::Recipient, Path, description = "The chat: a phone number or a JID")),
    request_body = ReadChat,
    responses((status = 200, body = Marked, description = "Read receipts were sent for these messages"),
        ApiKeyRequired, (status = 404, description = "No such session or message", body = ErrorBody),
        (status = 409, description = "The session is not connected on this node", body = ErrorBody),
        (status = 422, description = "Not a chat, or `up_to` is not a received message of it", body = ErrorBody),
        (status = 503, description = "WhatsApp did not take the receipts; try again", body = ErrorBody)))]
pub(super) async fn chat(
    State(state): State<AppState>,
    caller: Caller<scope::SendMessages>,
    Path((raw, raw_chat)): Path<(String, String)>,
    ApiJson(body): ApiJson<ReadChat>,
) -> Result<Json<Marked>, ApiError> {
    let shown = visible_session(&state, &caller, &raw).await?;
    let session = shown.id.clone();
    let chat = Jid::parse_recipient(&raw_chat).map_err(|e| ApiError::invalid_field("chat", e))?;
    let up_to = match body.up_to {
        None => None,
        Some(raw_id) => {
            let id = MessageId::parse(&raw_id).map_err(|_| message_not_found(&raw_id))?;
            let message =
                state.engine.store().get_message(&id).await?.ok_or_else(|| message_not_found(&raw_id))?;
            if message.session_id != session
                || message.chat != chat.to_string()
                || message.direction != Direction::In
            {
                return Err(ApiError::invalid_field("up_to", "not a received message of this chat"));
            }
            Some(id)
        }
    };
    let query = MessageQuery {
        session_id: session.clone(),
        chat: Some(chat.to_string()),
        direction: Some(Direction::In),
        before: None,
        limit: CHAT_READ_LIMIT,
    };
    let messages: Vec<Message> = state
        .engine
        .store()
        .list_messages(query)
        .await?
        .into_iter()
        .filter(|m| up_to.as_ref().is_none_or(|last| m.id <= *last))
        .collect();
    super::connected(shown)?;
    mark(&state, &session, &chat, messages).await
}
