//! wagate-store: everything wagate keeps durably, and its SQLite and PostgreSQL
//! implementations.
//!
//! Each area (`sessions`, `messages`, …) is a module holding its inputs and outputs and a
//! trait; the SQL that implements it, once for both backends, is `sql/<area>.rs`. [`Store`]
//! is the sum of the areas. Every method that changes a session or a message appends its
//! events in the same transaction and returns them ([`Appended`]), so callers know to announce
//! what is committed; readers see an event once the log has numbered it.
//!
//! # Backends
//!
//! `sqlite/mod.rs` and `postgres/mod.rs` each compile every `sql/*.rs` file as a child module
//! (`#[path]`), and those modules reach the backend only through what it defines:
//! - the types `Db`, `DbConn`, `DbPool`, `DbRow` (sqlx's) and `Backend` (the store type);
//! - on `Backend`: `writer()` (a connection to write on), `readers()` (a pool to read from),
//!   `keyring()` (the master keys that seal secrets: `keyring.rs`, `sql/secrets.rs`),
//!   `check_ready()`, `close()`, `send_signal()` and `signals()`;
//! - `begin` (a write transaction: `sql/tx.rs`), re-exported from `tx`;
//! - `dialect::{number_at_append, number_committed, tidy_numbered, ANY_UNNUMBERED, UNNUMBERED,
//!   json_elements, JSON_TEXT_ELEMENTS, json_rows, for_each_json_row, among_json_rows, AMONG,
//!   APPEND_ORDER, NUMBERED_AT_APPEND, SKIP_LOCKED, FOR_UPDATE, FOR_SHARE, LOCK_WAITS}`, the
//!   only SQL that differs.
//!
//! A query that one database cannot run goes into `dialect`, on both sides.

// Each backend compiles the SQL modules under `sql/` against its own database type, on
// purpose: one copy of the SQL, two stores.
#![allow(clippy::duplicate_mod)]

mod audit;
mod campaigns;
mod cluster;
mod contacts;
mod events;
pub mod keyring;
mod keys;
mod media;
mod messages;
mod orgs;
mod postgres;
mod retention;
mod sessions;
mod sqlite;
mod templates;
#[cfg(feature = "testing")]
pub mod testing;
mod webhooks;

use async_trait::async_trait;
use wagate_core::{DeviceKeys, Timestamp};

pub use audit::{AuditLog, AuditQuery};
pub use campaigns::{Campaigns, NewCampaign, RecipientQuery};
pub use cluster::{Cluster, Heartbeat, Lease, LeaseGrant, Node, NodeInfo};
pub use contacts::Contacts;
pub use events::{Appended, EventQuery, Events, Numbered};
pub use keyring::{KeyError, KeyId, Keyring, MasterKey};
pub use keys::ApiKeys;
pub use media::MediaRecords;
pub use messages::{
    Accepted, Claim, ClaimRequest, Claimed, Deferral, MessageQuery, MessageRef, Messages, NewInbound,
    NewOutbound, OutboundWrites, OutboundWritten, StatusUpdate,
};
pub use orgs::{OrgChange, Orgs};
pub use postgres::PgStore;
pub use retention::{Retention, Swept};
pub use sessions::{Credentials, NewSession, SessionChange, Sessions};
pub use sqlite::SqliteStore;
pub use templates::{NewHook, TemplateChange, Templates};
pub use webhooks::{
    AttemptOutcome, AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliverySlots, EventBound, NewWebhook,
    Replayed, WebhookChange, Webhooks,
};

/// The store's traits, for calling a concrete store's methods (`use wagate_store::prelude::*`);
/// through `dyn Store` they need no import.
pub mod prelude {
    pub use crate::{
        ApiKeys, AuditLog, Campaigns, Cluster, Contacts, Events, MediaRecords, Messages, Orgs, Retention,
        Sessions, Store, Templates, Webhooks,
    };
    pub use wagate_core::DeviceKeys;
}

/// Everything wagate keeps durably: every area, plus what concerns the database as a whole.
/// Callers hold an `Arc<dyn Store>`; the areas' methods are callable on it as they are.
#[async_trait]
pub trait Store:
    Sessions
    + Messages
    + Campaigns
    + Templates
    + Contacts
    + Webhooks
    + Events
    + Cluster
    + MediaRecords
    + Orgs
    + ApiKeys
    + AuditLog
    + Retention
    + DeviceKeys
    + Send
    + Sync
    + 'static
{
    /// Checks that the database answers on a new connection and has every migration applied.
    async fn ready(&self) -> Result<(), NotReady>;
    /// Closes the database connections, waiting for those in use.
    async fn close(&self);
    /// Seals every secret not sealed under the keyring's current key again under it (after a
    /// rotation of the master key); answers how many values it sealed.
    async fn reseal_secrets(&self) -> StoreResult<u64>;
    /// The ids of the master keys the stored secrets are sealed with.
    async fn sealing_key_ids(&self) -> StoreResult<Vec<String>>;
    async fn stats(&self) -> StoreResult<Stats>;
}

/// Counts for monitoring, read at once.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// (connector, status, sessions)
    pub sessions: Vec<(String, String, u64)>,
    /// Outbound messages waiting to be sent, and when the oldest of them was accepted.
    pub outbox: u64,
    pub outbox_oldest: Option<Timestamp>,
    /// Webhook deliveries pending, and when the oldest of them was queued.
    pub deliveries_pending: u64,
    pub deliveries_oldest: Option<Timestamp>,
    /// Events committed but not yet numbered (PostgreSQL numbers them just after commit), and
    /// when the oldest of them was appended.
    pub events_unnumbered: u64,
    pub events_unnumbered_oldest: Option<Timestamp>,
    /// Database connections waiting for a lock held by another transaction right now (always
    /// 0 on SQLite, whose writers queue for the database, not for locks).
    pub lock_waits: u64,
}

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The organization's quota of this (`sessions`) is used up.
    #[error("the organization's {0} quota is used up")]
    QuotaExceeded(&'static str),
    #[error(transparent)]
    IllegalTransition(#[from] wagate_core::IllegalTransition),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A secret cannot be opened: its master key is missing or wrong.
    #[error(transparent)]
    Keys(#[from] keyring::KeyError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Another node took over the session: this node's lease is no longer current.
    #[error("the session's lease has passed to another node")]
    Fenced,
}

impl StoreError {
    /// Whether the same write may succeed if tried again: the database refused it only because
    /// of what another writer was doing at the same moment (PostgreSQL's deadlock detection or
    /// a serialization failure).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Why the store is not ready to serve.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the database cannot be reached: {0}")]
    Database(String),
    #[error("the database schema is not current: {0}")]
    Migrations(String),
}

impl NotReady {
    /// The name of the failing check.
    pub fn check(&self) -> &'static str {
        match self {
            NotReady::Database(_) => "database",
            NotReady::Migrations(_) => "migrations",
        }
    }
}

impl From<StoreError> for wagate_core::DeviceKeysError {
    fn from(e: StoreError) -> Self {
        Self(Box::new(e))
    }
}
