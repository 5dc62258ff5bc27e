//! The HTTP API v1: one module per resource, each route described for the OpenAPI document
//! (`GET /openapi.json`, the contract) by the handler that serves it.

mod audit;
mod campaigns;
mod cluster;
mod compose;
mod contacts;
mod error;
mod events;
mod hooks;
mod keys;
mod media;
mod messages;
mod openapi;
mod orgs;
mod reads;
mod sessions;
mod sim;
mod streams;
mod templates;
mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::{middleware, Json, Router};
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;
use wagate_core::{Message, MessageId, Session, SessionId};

use crate::auth::Principal;
use crate::engine::OwnedSession;

pub(crate) use error::{ApiError, ApiJson, ApiQuery, ErrorCode};
pub(crate) use hooks::HookLimits;

use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;

/// What the docs UI (Swagger UI, served from this server) may load: its own scripts and styles
/// (it sets inline styles), its `data:` icons, and the document; nothing from elsewhere, and
/// no page may frame it.
const DOCS_POLICY: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
);

/// Every route of the server: the documented API, then `/openapi.json`, `/docs` and the
/// dashboard.
pub(crate) fn router(state: AppState) -> Router {
    let (app, openapi) = documented_routes(&state).split_for_parts();
    let document = openapi::document(openapi);
    let body_timeout = crate::config::ms(state.config.api.body_read_timeout_ms.get());
    let docs = Router::from(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", document))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, DOCS_POLICY));
    let mut app = app.merge(docs);
    if state.config.ui.enabled {
        app = app.merge(crate::ui::routes(&state.config.ui.path));
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.api.max_body_bytes.get()))
        .layer(middleware::map_request(move |request| async move {
            crate::http::Deadline::wrap(request, body_timeout)
        }))
        .layer(
            tower::ServiceBuilder::new()
                // A request id from `x-request-id`, or a new one; echoed in the answer and
                // carried by every log line of the request.
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::x_request_id())
                // Answers are data, never pages to sniff, frame or send a referrer from.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                )),
        )
        .with_state(state)
}

/// Every API route, each with its OpenAPI description. Routes are added here only with
/// `routes!`, so none exists without its description.
fn documented_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let mut v1 = OpenApiRouter::new()
        .routes(routes!(sessions::create, sessions::list))
        .routes(routes!(sessions::get, sessions::delete))
        .routes(routes!(sessions::connect))
        .routes(routes!(sessions::disconnect))
        .routes(routes!(sessions::logout))
        .routes(routes!(sessions::qr))
        .routes(routes!(contacts::check))
        .routes(routes!(contacts::list))
        .routes(routes!(contacts::chats))
        .routes(routes!(reads::chat))
        .routes(routes!(reads::message))
        .routes(routes!(messages::list))
        .routes(routes!(media::download))
        .routes(routes!(campaigns::get))
        .routes(routes!(campaigns::pause))
        .routes(routes!(campaigns::resume))
        .routes(routes!(campaigns::cancel))
        .routes(routes!(campaigns::recipients))
        .routes(routes!(hooks::create, hooks::list))
        .routes(routes!(hooks::revoke))
        .routes(routes!(messages::get, messages::cancel))
        .routes(routes!(events::list))
        .routes(routes!(streams::sse))
        .routes(routes!(streams::ws))
        .routes(routes!(templates::create, templates::list))
        .routes(routes!(templates::get, templates::update, templates::delete))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::delivery))
        .routes(routes!(webhooks::retry))
        .routes(routes!(webhooks::replay))
        .routes(routes!(orgs::create, orgs::list))
        .routes(routes!(orgs::get, orgs::update, orgs::delete))
        .routes(routes!(audit::list))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::get, keys::revoke))
        .routes(routes!(cluster::nodes))
        .routes(routes!(cluster::drain));
    if state.sim.is_some() {
        v1 = v1
            .routes(routes!(sim::scan))
            .routes(routes!(sim::pair))
            .routes(routes!(sim::inbound))
            .routes(routes!(sim::faults));
    }
    // A campaign may carry 100,000 recipients: its body limit is its own.
    let uploads = OpenApiRouter::new()
        .routes(routes!(campaigns::create, campaigns::list))
        .layer(DefaultBodyLimit::max(state.config.campaigns.max_body_bytes.get()));
    // A file (or a send carrying one as base64) may be as large as the largest media message.
    let largest = usize::try_from(state.media.max_upload()).unwrap_or(usize::MAX);
    let files = OpenApiRouter::new()
        .routes(routes!(media::upload))
        .layer(DefaultBodyLimit::max(largest.saturating_add(1024 * 1024)));
    let sends = OpenApiRouter::new()
        .routes(routes!(messages::send))
        .layer(DefaultBodyLimit::max((largest / 3).saturating_mul(4).saturating_add(1024 * 1024)));
    let v1 = v1
        .merge(uploads)
        .merge(files)
        .merge(sends)
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::auth::require_key));
    let mut app = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/v1", v1)
        .routes(routes!(hooks::call))
        .routes(routes!(healthz))
        .routes(routes!(readyz));
    if state.config.metrics.listen.is_none() {
        app = app.merge(metrics_routes(state));
    }
    app.route_layer(middleware::from_fn(crate::metrics::track_http))
}

/// `GET /metrics`, behind the admin key when `metrics.require_key` is set.
pub(crate) fn metrics_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new().routes(routes!(crate::metrics::render));
    if state.config.metrics.require_key {
        routes.route_layer(middleware::from_fn_with_state(state.clone(), crate::auth::require_key))
    } else {
        routes
    }
}

fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    // A hook's path is its secret: logs name the route, not the token.
    let path = request.uri().path();
    let path = if path.starts_with("/hooks/") { "/hooks/{token}" } else { path };
    tracing::info_span!("request", method = %request.method(), path, request_id)
}

async fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::RouteNotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this route does not take that method",
    )
}

/// The process is alive.
#[utoipa::path(operation_id = "server_healthz", get, path = "/healthz", tag = "operations", security(()), responses((status = 200, body = openapi::Health, description = "OK")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers with its schema current and the background workers run;
/// otherwise 503 naming the failing check.
#[utoipa::path(operation_id = "server_readyz", get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = openapi::Ready, description = "OK"), (status = 503, description = "Not ready; `details.check` names the failing check", body = openapi::ErrorBody)))]
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let not_ready = |check: &str, message: String| {
        tracing::warn!(check, "not ready: {message}");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NotReady, message)
            .with_details(json!({ "check": check }))
    };
    if let Err(e) = state.engine.store().ready().await {
        return Err(not_ready(e.check(), e.to_string()));
    }
    if !state.engine.workers_running() || !state.deliverer.is_running() {
        return Err(not_ready("workers", "a background worker has stopped".into()));
    }
    Ok(Json(
        json!({ "status": "ready", "checks": { "database": "ok", "migrations": "ok", "workers": "ok" } }),
    ))
}

/// A session id from the path; one that cannot be valid names no session.
fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).map_err(|_| ApiError::session_not_found(raw))
}

/// The session `raw` names, when the caller may see it: a session of another organization
/// (or outside a key's session list) is answered exactly as one that does not exist.
pub(super) async fn visible_session(
    state: &AppState,
    caller: &Principal,
    raw: &str,
) -> Result<Session, ApiError> {
    let id = session_id(raw)?;
    match state.engine.store().get_session(&id).await? {
        Some(session) if caller.sees_session(&session) => Ok(session),
        _ => Err(ApiError::session_not_found(raw)),
    }
}

/// The session `raw` names with its organization, when the caller may see it: what sending
/// needs, without reading the session each time (the engine remembers whose it is). What is
/// remembered can be out of date only for a session deleted and created again on another
/// node, so a refusal is checked against the database before it is the answer.
pub(super) async fn owned_session(
    state: &AppState,
    caller: &Principal,
    raw: &str,
) -> Result<OwnedSession, ApiError> {
    let id = session_id(raw)?;
    for fresh in [false, true] {
        match state.engine.owned_session(&id, fresh).await? {
            Some(session) if caller.sees(&session.org_id, &session.id) => return Ok(session),
            Some(_) if !fresh => {}
            _ => break,
        }
    }
    Err(ApiError::session_not_found(raw))
}

/// Refuses to ask WhatsApp anything through a session that is not connected: the answer
/// is the session's state (409), not WhatsApp's silence (503).
pub(super) fn connected(session: Session) -> Result<Session, ApiError> {
    if session.status == wagate_core::SessionStatus::Connected {
        return Ok(session);
    }
    Err(ApiError::conflict(
        ErrorCode::SessionNotConnected,
        format!("session is {}, not connected", session.status.as_str()),
    )
    .with_details(json!({ "status": session.status })))
}

/// The message `raw` names, when the caller may see its session; otherwise 404 as if it did
/// not exist.
pub(super) async fn visible_message(
    state: &AppState,
    caller: &Principal,
    raw: &str,
) -> Result<Message, ApiError> {
    let not_found = || ApiError::not_found(ErrorCode::MessageNotFound, format!("no message with id {raw:?}"));
    let id = MessageId::parse(raw).map_err(|_| not_found())?;
    let message = state.engine.store().get_message(&id).await?.ok_or_else(not_found)?;
    match state.engine.store().get_session(&message.session_id).await? {
        Some(session) if caller.sees_session(&session) => Ok(message),
        _ => Err(not_found()),
    }
}

/// The `limit` of a list request: `default` when absent, 1 to `max` when given.
fn page_limit(requested: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = requested.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_field("limit", format!("must be between 1 and {max}")))
    }
}
