//! Shared test plumbing: a fake on a free port and a tiny JSON HTTP client
//! for its control API.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::time::Duration;

use fake_whatsapp::companion::{Companion, Options};
use fake_whatsapp::{Config, FakeServer, Running};
use serde_json::Value;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::waproto::whatsapp as wa;

pub const WAIT: Duration = Duration::from_secs(30);

pub async fn fake() -> Running {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    FakeServer::start(Config::default(), "127.0.0.1:0".parse().expect("address")).await.expect("fake starts")
}

pub async fn post(url: String, body: Value) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let mut resp = agent.post(&url).send_json(&body).expect("control request");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_json::<Value>().unwrap_or(Value::Null))
    })
    .await
    .expect("request task")
}

pub async fn get(url: String) -> Value {
    tokio::task::spawn_blocking(move || {
        let mut resp = ureq::get(&url).call().expect("control request");
        resp.body_mut().read_json::<Value>().expect("json body")
    })
    .await
    .expect("request task")
}

/// The control API's view of one device.
pub async fn device(fake: &Running, phone: &str, device: u64) -> Value {
    let accounts = get(format!("{}/accounts", fake.control_url)).await;
    accounts
        .as_array()
        .and_then(|a| a.iter().find(|acc| acc["phone"] == phone))
        .and_then(|acc| acc["devices"].as_array())
        .and_then(|d| d.iter().find(|dev| dev["id"] == device))
        .cloned()
        .unwrap_or(Value::Null)
}

pub async fn unhandled(fake: &Running) -> Vec<Value> {
    get(format!("{}/unhandled", fake.control_url)).await.as_array().cloned().unwrap_or_default()
}

pub async fn link(fake: &Running, phone: &str, name: &str) -> Companion {
    Companion::link(&fake.server, &fake.ws_url, phone, Options::named(name)).await.expect("linked")
}

pub fn text(body: &str) -> wa::Message {
    wa::Message { conversation: Some(body.to_owned()), ..Default::default() }
}

/// The inbound message with this id, as it arrived.
pub fn message(event: &Event, id: &str) -> Option<wa::Message> {
    let Event::Messages(batch) = event else { return None };
    batch.messages.iter().find(|m| m.info.id == id).map(|m| (*m.message).clone())
}

/// (sender user, body, offline) of the inbound message with this id.
pub fn received(event: &Event, id: &str) -> Option<(String, String, bool)> {
    let Event::Messages(batch) = event else { return None };
    batch.messages.iter().find(|m| m.info.id == id).map(|m| {
        let body = m.message.conversation.clone().unwrap_or_default();
        (m.info.source.sender.user.to_string(), body, m.info.is_offline)
    })
}

pub fn receipt(event: &Event, id: &str, kind: ReceiptType) -> Option<()> {
    let Event::Receipt(r) = event else { return None };
    (r.r#type == kind && r.message_ids.iter().any(|m| m == id)).then_some(())
}
