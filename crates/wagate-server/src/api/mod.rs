//! The HTTP API v1 (see DESIGN.md §4).

mod error;
mod events;
mod messages;
mod sessions;
mod sim;
mod streams;
mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::json;
use wagate_core::SessionId;

pub use error::{ApiError, ApiJson, ApiQuery};

use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::AppState;

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let mut v1 = Router::new()
        .route("/sessions", post(sessions::create).get(sessions::list))
        .route("/sessions/{id}", get(sessions::get).delete(sessions::delete))
        .route("/sessions/{id}/connect", post(sessions::connect))
        .route("/sessions/{id}/disconnect", post(sessions::disconnect))
        .route("/sessions/{id}/logout", post(sessions::logout))
        .route("/sessions/{id}/qr", get(sessions::qr))
        .route("/sessions/{id}/messages", post(messages::send).get(messages::list))
        .route("/messages/{id}", get(messages::get))
        .route("/events", get(events::list))
        .route("/events/stream", get(streams::sse))
        .route("/events/ws", get(streams::ws))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/webhooks/{id}", get(webhooks::get).patch(webhooks::update).delete(webhooks::delete))
        .route("/webhooks/{id}/rotate-secret", post(webhooks::rotate_secret))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/webhooks/{id}/deliveries/{delivery_id}", get(webhooks::delivery))
        .route("/webhooks/{id}/deliveries/{delivery_id}/retry", post(webhooks::retry))
        .route("/webhooks/{id}/replay", post(webhooks::replay));
    if state.sim.is_some() {
        v1 = v1.merge(sim::routes());
    }
    let v1 = v1.route_layer(middleware::from_fn_with_state(state.clone(), crate::auth::require_key));
    let mut app = Router::new().nest("/v1", v1).route("/healthz", get(healthz)).route("/readyz", get(readyz));
    if state.config.metrics.listen.is_none() {
        app = app.merge(metrics_routes(&state));
    }
    app.route_layer(middleware::from_fn(crate::metrics::track_http))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.api.max_body_bytes))
        .layer(
            tower::ServiceBuilder::new()
                // A request id from `x-request-id`, or a new one; echoed in the answer and
                // carried by every log line of the request.
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state)
}

/// `GET /metrics`, behind the admin key when `metrics.require_key` is set.
pub fn metrics_routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new().route("/metrics", get(crate::metrics::render));
    if state.config.metrics.require_key {
        routes.route_layer(middleware::from_fn_with_state(state.clone(), crate::auth::require_key))
    } else {
        routes
    }
}

fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
}

async fn not_found() -> ApiError {
    ApiError::not_found("route_not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers with its schema current and the background workers run;
/// otherwise 503 naming the failing check.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let not_ready = |check: &str, message: String| {
        tracing::warn!(check, "not ready: {message}");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
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

/// The `limit` of a list request: `default` when absent, 1 to `max` when given.
fn page_limit(requested: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = requested.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_field("limit", format!("must be between 1 and {max}")))
    }
}
