//! Live event streams: `GET /v1/events/stream` (Server-Sent Events) and `GET /v1/events/ws`
//! (WebSocket). Both start after a resume id (or now), read what was missed from the log,
//! then follow the live feed; a consumer too slow for the feed is cut off with a reason.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use wagate_core::{Event, EventId, SessionId};

use super::events::{parse_types, refuse_expired};
use super::openapi::{ApiKeyRequired, ErrorBody};
use super::{ApiError, ApiQuery, ErrorCode};
use crate::auth::{scope, Caller, Principal};
use crate::engine::{EventFilter, StreamEnd, Subscription};
use crate::AppState;

/// How long one WebSocket message may wait for a consumer that stopped reading.
const WS_SEND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StreamQuery {
    #[param(value_type = Option<SessionId>)]
    session_id: Option<String>,
    /// Comma-separated exact types or `prefix.*`.
    #[param(value_type = Option<wagate_core::EventFilters>)]
    types: Option<String>,
    /// Resume after this event id.
    #[param(value_type = Option<EventId>)]
    after: Option<String>,
}

/// What a subscriber asked for.
struct Subscribe {
    filter: EventFilter,
    after: Option<EventId>,
}

impl Subscribe {
    fn parse(session_id: Option<&str>, types: Option<&str>, after: Option<&str>) -> Result<Self, ApiError> {
        let session_id = session_id
            .map(|s| SessionId::parse(s).map_err(|e| ApiError::invalid_field("session_id", e)))
            .transpose()?;
        let types = types.map(parse_types).transpose()?.unwrap_or_default();
        let after =
            after.map(|a| EventId::parse(a).map_err(|e| ApiError::invalid_field("after", e))).transpose()?;
        Ok(Self { filter: EventFilter { session_id, types, ..EventFilter::default() }, after })
    }

    /// Narrows the subscription to what the caller may see: its organization's events, and
    /// only its sessions' when its key is limited to some.
    fn seen_by(mut self, caller: &Principal) -> Self {
        self.filter.org_id = caller.org().cloned();
        self.filter.sessions = caller.sessions().map(<[_]>::to_vec);
        self
    }

    /// The first WebSocket message: `{"session_id"?, "types"?: "a,b" | ["a","b"], "after"?}`.
    fn from_message(text: &str) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::invalid_field("subscribe", format!("not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(ApiError::invalid_field("subscribe", "must be a JSON object"));
        };
        let text_field = |name: &str| -> Result<Option<String>, ApiError> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) if name == "types" => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(|items| Some(items.join(",")))
                    .ok_or_else(|| ApiError::invalid_field(name, "must be strings")),
                Some(_) => Err(ApiError::invalid_field(name, "must be a string")),
            }
        };
        if let Some(unknown) = fields.keys().find(|k| !["session_id", "types", "after"].contains(&k.as_str()))
        {
            return Err(ApiError::invalid_field(unknown, "unknown field"));
        }
        Self::parse(
            text_field("session_id")?.as_deref(),
            text_field("types")?.as_deref(),
            text_field("after")?.as_deref(),
        )
    }
}

/// The next event, or why the stream ends (the server stopping ends it too).
async fn next_event(
    subscription: &mut Subscription,
    stopping: &CancellationToken,
) -> Result<Event, StreamEnd> {
    let next = tokio::select! {
        next = subscription.next() => next,
        () = stopping.cancelled() => Err(StreamEnd::ShuttingDown),
    };
    match next {
        // The store closing under a stopping server is the shutdown, not a fault.
        Err(StreamEnd::Store(_)) if stopping.is_cancelled() => Err(StreamEnd::ShuttingDown),
        next => next,
    }
}

fn end_code(end: &StreamEnd) -> ErrorCode {
    match end {
        StreamEnd::SlowConsumer(_) => ErrorCode::SlowConsumer,
        StreamEnd::ShuttingDown => ErrorCode::ShuttingDown,
        StreamEnd::Store(e) => {
            tracing::error!(error = %e, "an event stream failed");
            ErrorCode::InternalError
        }
    }
}

/// `GET /v1/events/stream`: each event as `id: evt_…` + `data: <envelope>`; a stream that
/// ends says why in a last `event: close`. `Last-Event-ID` (or `after`) resumes.
/// One event of the stream, as an `EventSource` reads it: `data` holds the event's envelope
/// (JSON); a stream that ends sends `event: close` with a notice `{"code","message"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "described in the document, never built")]
struct StreamEvent {
    /// The event id (`evt_…`), to resume from.
    id: Option<String>,
    /// `message`, or `close` for the closing notice.
    event: Option<String>,
    #[schema(content_media_type = "application/json")]
    data: String,
}

#[utoipa::path(operation_id = "events_sse", get, path = "/events/stream", tag = "events",
    params(StreamQuery, ("Last-Event-ID" = Option<EventId>, Header, description = "Resume after this event id")),
    responses((status = 200, content_type = "text/event-stream", body = StreamEvent,
        description = "Each event as `id: evt_…` + `data: <envelope>`; a stream that ends says why in `event: close`"), ApiKeyRequired, (status = 410, description = "Retention deleted events after the resume id (`events_expired`; resume after `details.expired_through`)", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn sse(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().map_err(|_| ApiError::invalid_field("Last-Event-ID", "must be an event id")))
        .transpose()?;
    let subscribe = Subscribe::parse(
        query.session_id.as_deref(),
        query.types.as_deref(),
        last_event_id.or(query.after.as_deref()),
    )?
    .seen_by(&caller);
    refuse_expired(&state, subscribe.after).await?;
    let subscription = state.engine.subscription(subscribe.filter, subscribe.after).await.map_err(|e| {
        if state.stopping.is_cancelled() {
            ApiError::shutting_down()
        } else {
            ApiError::from(e)
        }
    })?;
    let stream =
        futures_util::stream::unfold(Some((subscription, state.stopping.clone())), |open| async move {
            let (mut subscription, stopping) = open?;
            match next_event(&mut subscription, &stopping).await {
                Ok(event) => {
                    let frame = SseEvent::default().id(event.id.to_string()).data(json!(event).to_string());
                    Some((Ok(frame), Some((subscription, stopping))))
                }
                Err(end) => {
                    let notice = json!({ "code": end_code(&end), "message": end.to_string() });
                    Some((Ok(SseEvent::default().event("close").data(notice.to_string())), None))
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /v1/events/ws`: each event as a text message holding the envelope. Filters and the
/// resume id come from the query, or from the client's first message when the query has
/// none (sent within `events.ws_hello_ms`; after that the stream starts with no filter).
#[utoipa::path(operation_id = "events_ws", get, path = "/events/ws", tag = "events", params(StreamQuery),
    responses((status = 101, description = "WebSocket: each event as a text message holding the envelope; without query parameters the first client message may carry `{\"session_id\",\"types\",\"after\"}`"),
        ApiKeyRequired, (status = 410, description = "Retention deleted events after the resume id (`events_expired`; resume after `details.expired_through`)", body = ErrorBody), (status = 422, description = "Invalid field (`details.field`)", body = ErrorBody)))]
pub(super) async fn ws(
    State(state): State<AppState>,
    caller: Caller<scope::ReadMessages>,
    ApiQuery(query): ApiQuery<StreamQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let from_query = query.session_id.is_some() || query.types.is_some() || query.after.is_some();
    let subscribe =
        Subscribe::parse(query.session_id.as_deref(), query.types.as_deref(), query.after.as_deref())?;
    refuse_expired(&state, subscribe.after).await?;
    let caller = caller.0;
    Ok(upgrade
        .on_upgrade(move |socket| serve_ws(state, socket, caller, subscribe, !from_query))
        .into_response())
}

async fn serve_ws(
    state: AppState,
    socket: WebSocket,
    caller: Principal,
    mut subscribe: Subscribe,
    await_hello: bool,
) {
    let (mut sink, mut source) = socket.split();
    if await_hello {
        let hello = Duration::from_millis(state.config.events.ws_hello_ms);
        match tokio::time::timeout(hello, source.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => match Subscribe::from_message(&text) {
                Ok(asked) => subscribe = asked,
                Err(e) => return close(&mut sink, 1008, &e.message).await,
            },
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return,
            // No subscribe message: every event from now.
            Ok(Some(Ok(_))) | Err(_) => {}
        }
    }
    let subscribe = subscribe.seen_by(&caller);
    if let Err(e) = refuse_expired(&state, subscribe.after).await {
        return close(&mut sink, 1008, &format!("{}: {}", e.code, e.message)).await;
    }
    let mut subscription = match state.engine.subscription(subscribe.filter, subscribe.after).await {
        Ok(subscription) => subscription,
        Err(_) if state.stopping.is_cancelled() => {
            let reason = format!("{}: {}", end_code(&StreamEnd::ShuttingDown), StreamEnd::ShuttingDown);
            return close(&mut sink, 1001, &reason).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start an event stream");
            return close(&mut sink, 1011, "internal error; see the server log").await;
        }
    };
    loop {
        tokio::select! {
            next = next_event(&mut subscription, &state.stopping) => match next {
                Ok(event) => {
                    let text = json!(event).to_string();
                    match tokio::time::timeout(WS_SEND_TIMEOUT, sink.send(Message::Text(text.into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => return close(&mut sink, 1008, "slow consumer: stopped reading").await,
                    }
                }
                Err(end) => {
                    let code = if matches!(end, StreamEnd::ShuttingDown) { 1001 } else if matches!(end, StreamEnd::SlowConsumer(_)) { 1008 } else { 1011 };
                    let reason = format!("{}: {end}", end_code(&end));
                    return close(&mut sink, code, &reason).await;
                }
            },
            incoming = source.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Pings are answered by the WebSocket layer; anything else is ignored.
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Closes with a code and a reason (cut to the 123 bytes a close frame can carry).
async fn close(sink: &mut futures_util::stream::SplitSink<WebSocket, Message>, code: u16, reason: &str) {
    let mut reason = reason.to_owned();
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
}
