//! The control API: plain JSON over HTTP on the server's own address, for
//! tests and local development (no auth). Route paths and shapes are a
//! contract other code depends on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::Block;
use crate::noise::Pattern;
use crate::server::{FakeServer, Unhandled};
use crate::{contacts, lifecycle, pairing};

pub(crate) fn routes() -> Router<FakeServer> {
    Router::new()
        .route("/control/scan", post(scan))
        .route("/control/pair", post(pair))
        .route("/control/accounts", get(accounts))
        .route("/control/unhandled", get(unhandled))
        .route("/control/accounts/{phone}/unlink", post(unlink))
        .route("/control/accounts/{phone}/ban", post(ban))
        .route("/control/accounts/{phone}/outdated", post(outdated))
        .route("/control/accounts/{phone}/clear", post(clear))
        .route("/control/accounts/{phone}/drop", post(drop_connections))
        .route("/control/contacts", post(start_contact))
        .route("/control/contacts/{phone}/messages", post(contact_send).get(contact_messages))
        .route("/control/contacts/{phone}/sent", get(contact_sent))
}

fn error(status: StatusCode, e: anyhow::Error) -> Response {
    (status, Json(json!({ "error": format!("{e:#}") }))).into_response()
}

#[derive(Deserialize)]
struct ScanRequest {
    qr: String,
    phone: String,
}

async fn scan(State(server): State<FakeServer>, Json(req): Json<ScanRequest>) -> Response {
    match pairing::scan(&server, &req.qr, &req.phone) {
        Ok(linked) => Json(linked).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

#[derive(Deserialize)]
struct PairRequest {
    code: String,
    phone: String,
}

async fn pair(State(server): State<FakeServer>, Json(req): Json<PairRequest>) -> Response {
    match crate::pair_code::enter(&server, &req.code, &req.phone).await {
        Ok(linked) => Json(linked).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// One account as `GET /control/accounts` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccountView {
    pub phone: String,
    pub lid: String,
    pub name: Option<String>,
    pub block: Option<serde_json::Value>,
    pub devices: Vec<DeviceView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: u16,
    pub jid: String,
    pub lid: String,
    pub online: bool,
    pub active: bool,
    /// Stanzas routed to the device that it has not acked yet.
    pub queued: usize,
    /// One-time prekeys left on the server.
    pub prekeys: usize,
    pub logins: u32,
    /// The handshake of the device's latest login.
    pub last_pattern: Option<Pattern>,
}

pub fn account_views(server: &FakeServer) -> Vec<AccountView> {
    let state = server.state();
    state
        .registry
        .accounts
        .values()
        .map(|a| AccountView {
            phone: a.phone.clone(),
            lid: a.lid.clone(),
            name: a.name.clone(),
            block: a.block.as_ref().map(|b: &Block| serde_json::to_value(b).unwrap_or_default()),
            devices: a
                .devices
                .values()
                .map(|d| {
                    let online = state.online.get(&(a.phone.clone(), d.id));
                    DeviceView {
                        id: d.id,
                        jid: a.pn_jid(d.id).to_string(),
                        lid: a.lid_jid(d.id).to_string(),
                        online: online.is_some(),
                        active: online.is_some_and(|o| o.active),
                        queued: d.queue.len(),
                        prekeys: d.prekeys.len(),
                        logins: d.logins,
                        last_pattern: d.last_pattern,
                    }
                })
                .collect(),
        })
        .collect()
}

async fn accounts(State(server): State<FakeServer>) -> Json<Vec<AccountView>> {
    Json(account_views(&server))
}

async fn unhandled(State(server): State<FakeServer>) -> Json<Vec<Unhandled>> {
    Json(server.unhandled())
}

fn done(result: anyhow::Result<serde_json::Value>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

async fn unlink(State(server): State<FakeServer>, Path(phone): Path<String>) -> Response {
    done(lifecycle::unlink(&server, &phone).map(|n| json!({ "unlinked": n })))
}

#[derive(Deserialize)]
struct BanRequest {
    seconds: u64,
}

async fn ban(
    State(server): State<FakeServer>,
    Path(phone): Path<String>,
    Json(req): Json<BanRequest>,
) -> Response {
    done(lifecycle::ban(&server, &phone, req.seconds).map(|()| json!({ "banned_seconds": req.seconds })))
}

async fn outdated(State(server): State<FakeServer>, Path(phone): Path<String>) -> Response {
    done(lifecycle::outdated(&server, &phone).map(|()| json!({ "outdated": true })))
}

async fn clear(State(server): State<FakeServer>, Path(phone): Path<String>) -> Response {
    done(lifecycle::clear(&server, &phone).map(|()| json!({ "cleared": true })))
}

async fn drop_connections(State(server): State<FakeServer>, Path(phone): Path<String>) -> Response {
    done(lifecycle::drop_connections(&server, &phone).map(|n| json!({ "dropped": n })))
}

#[derive(Deserialize)]
struct ContactRequest {
    phone: String,
    name: Option<String>,
}

async fn start_contact(State(server): State<FakeServer>, Json(req): Json<ContactRequest>) -> Response {
    if req.phone.is_empty() || !req.phone.bytes().all(|b| b.is_ascii_digit()) {
        return error(StatusCode::BAD_REQUEST, anyhow::anyhow!("phone must be digits only"));
    }
    match contacts::start(&server, &req.phone, req.name).await {
        Ok(()) => Json(json!({ "phone": req.phone })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn contact_send(
    State(server): State<FakeServer>,
    Path(phone): Path<String>,
    Json(out): Json<contacts::Outgoing>,
) -> Response {
    if server.contact(&phone).is_none() {
        return error(StatusCode::NOT_FOUND, anyhow::anyhow!("no virtual contact {phone}"));
    }
    match contacts::send(&server, &phone, out).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn contact_sent(State(server): State<FakeServer>, Path(phone): Path<String>) -> Response {
    match server.contact(&phone) {
        Some(contact) => Json(contact.sent()).into_response(),
        None => error(StatusCode::NOT_FOUND, anyhow::anyhow!("no virtual contact {phone}")),
    }
}

async fn contact_messages(State(server): State<FakeServer>, Path(phone): Path<String>) -> Response {
    match server.contact(&phone) {
        Some(contact) => Json(contact.received()).into_response(),
        None => error(StatusCode::NOT_FOUND, anyhow::anyhow!("no virtual contact {phone}")),
    }
}
