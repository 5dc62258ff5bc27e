//! Configuration: compiled-in defaults, then `wagate.toml` (or `--config`), then `WAGATE_*`
//! environment variables (`__` separates nested keys). Validated once at start.
//!
//! Each section's `Default` sits right below it, so a new key is one field (with its
//! default) here and one row in `docs/configuration.md`, which a test below checks. A value
//! that must not be zero has a `NonZero*` type: serde refuses a zero, naming the key (the few
//! the engine still reads as plain numbers are checked by [`Config::validate`]). Secrets
//! (`admin_key`, `master_key`, `database_url`, `media.s3_secret_access_key`, `auth.jwt.hs256_secret`) are [`SecretString`]s: their
//! `Debug` shows `[REDACTED]`, and serializing the configuration masks them.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use wagate_connect::web::WebConfig;

/// A non-zero default, checked when compiling.
macro_rules! nz {
    ($n:expr) => {
        const {
            match ::std::num::NonZero::new($n) {
                Some(n) => n,
                None => panic!("a non-zero default is zero"),
            }
        }
    };
}

const MIB: u64 = 1024 * 1024;
const HOUR_MS: u64 = 3_600_000;

/// Everything wagate can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the HTTP API listens on (`host:port`).
    pub listen: String,
    /// Where the SQLite database, the admin key and media live.
    pub data_dir: PathBuf,
    /// Admin API key; when unset one is generated on first start and kept in the data dir.
    #[serde(serialize_with = "masked::secret")]
    pub admin_key: Option<SecretString>,
    /// Master keys (base64, comma-separated, the first seals) that seal secrets at rest; when
    /// unset, kept in the data dir (generated on first start).
    #[serde(serialize_with = "masked::secret")]
    pub master_key: Option<SecretString>,
    /// `sqlite://…` or `postgres://user:password@…`; defaults to `wagate.db` in the data dir.
    #[serde(serialize_with = "masked::password")]
    pub database_url: Option<SecretString>,
    /// Where media is stored; defaults to `media/` in the data dir.
    pub media_url: Option<String>,
    /// This node's name in events and logs.
    pub node_id: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub rate_limits: RateLimitConfig,
    pub audit: AuditConfig,
    pub retention: RetentionConfig,
    pub engine: EngineConfig,
    pub events: EventsConfig,
    pub webhooks: WebhooksConfig,
    pub metrics: MetricsConfig,
    pub connectors: ConnectorsConfig,
    pub campaigns: CampaignsConfig,
    pub pacing: PacingConfig,
    pub media: MediaConfig,
    pub node: NodeConfig,
    pub ui: UiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("wagate-data"),
            admin_key: None,
            master_key: None,
            database_url: None,
            media_url: None,
            node_id: "node-1".into(),
            log_format: LogFormat::Text,
            api: ApiConfig::default(),
            auth: AuthConfig::default(),
            rate_limits: RateLimitConfig::default(),
            audit: AuditConfig::default(),
            retention: RetentionConfig::default(),
            engine: EngineConfig::default(),
            events: EventsConfig::default(),
            webhooks: WebhooksConfig::default(),
            metrics: MetricsConfig::default(),
            connectors: ConnectorsConfig::default(),
            campaigns: CampaignsConfig::default(),
            pacing: PacingConfig::default(),
            media: MediaConfig::default(),
            node: NodeConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    /// Largest request body accepted.
    pub max_body_bytes: NonZeroUsize,
    /// How long `?wait=true` waits for a send result before answering 504.
    pub wait_timeout_ms: u64,
    /// Calls each trigger hook (`/hooks/{token}`) takes per minute, counted on each node; more
    /// get 429.
    pub hook_calls_per_minute: NonZeroU32,
    /// How long a client has to send a request's headers (and how long an idle keep-alive
    /// connection stays open); then the connection is closed.
    pub header_read_timeout_ms: NonZeroU64,
    /// How long a client has to send a request's body, from its headers; then 408.
    pub body_read_timeout_ms: NonZeroU64,
    /// Connections served at once; more wait to be accepted until one closes.
    pub max_connections: NonZeroUsize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: nz!(1024 * 1024),
            wait_timeout_ms: 30_000,
            hook_calls_per_minute: nz!(30),
            header_read_timeout_ms: nz!(10_000),
            body_read_timeout_ms: nz!(120_000),
            max_connections: nz!(4096),
        }
    }
}

/// API keys of organizations, and JWTs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// How often the `last_used_at` of the keys in use is written: one write for every key
    /// used since the last, instead of a write per request.
    pub last_used_flush_ms: NonZeroU64,
    pub jwt: JwtConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { last_used_flush_ms: nz!(10_000), jwt: JwtConfig::default() }
    }
}

/// Bearer JWTs, accepted beside API keys when one of `hs256_secret`, `public_key_files` or
/// `jwks_url` is set. A token is a member of the organization its `org_claim` names, with the
/// scopes of its `scopes_claim`; never the gateway's operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JwtConfig {
    /// The shared secret of HS256 tokens (at least 32 bytes).
    #[serde(serialize_with = "masked::secret")]
    pub hs256_secret: Option<SecretString>,
    /// PEM files of public keys: RSA keys verify RS256 tokens, P-256 keys ES256 tokens.
    pub public_key_files: Vec<PathBuf>,
    /// Where the issuer publishes its keys (a JWKS document, RS256 and ES256 keys by `kid`).
    pub jwks_url: Option<String>,
    /// How often the JWKS document is fetched again.
    pub jwks_refresh_ms: NonZeroU64,
    /// A token naming a `kid` the gateway lacks fetches the document at once, at most this often.
    pub jwks_refetch_min_ms: NonZeroU64,
    /// How long a fetch of the JWKS document may take.
    pub jwks_timeout_ms: NonZeroU64,
    /// The `iss` a token must carry; unset accepts any.
    pub issuer: Option<String>,
    /// The `aud` a token must carry; required when JWTs are on.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (JWT times are whole seconds).
    pub leeway_ms: u64,
    /// The claim naming the token's organization.
    pub org_claim: String,
    /// The claim holding the token's scopes: a space-separated string (OAuth 2) or a list.
    pub scopes_claim: String,
    /// The claim listing the only sessions the token may reach; absent, all of its organization's.
    pub sessions_claim: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            public_key_files: Vec::new(),
            jwks_url: None,
            jwks_refresh_ms: nz!(300_000),
            jwks_refetch_min_ms: nz!(30_000),
            jwks_timeout_ms: nz!(5_000),
            issuer: None,
            audience: None,
            leeway_ms: 30_000,
            org_claim: "org".into(),
            scopes_claim: "scope".into(),
            sessions_claim: "sessions".into(),
        }
    }
}

impl JwtConfig {
    /// Whether JWTs are accepted at all.
    pub fn enabled(&self) -> bool {
        self.hs256_secret.is_some() || !self.public_key_files.is_empty() || self.jwks_url.is_some()
    }

    /// Checks what serde cannot: JWTs on need an audience, a long secret, an http(s) JWKS URL.
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        if self.hs256_secret.as_ref().is_some_and(|s| s.expose_secret().len() < 32) {
            return Err(ConfigError::Jwt("auth.jwt.hs256_secret must be at least 32 bytes (RFC 7518 §3.2)"));
        }
        if let Some(url) = &self.jwks_url {
            let parsed = url::Url::parse(url).ok();
            if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
                return Err(ConfigError::JwksUrl(url.clone()));
            }
        }
        for claim in [&self.org_claim, &self.scopes_claim, &self.sessions_claim] {
            if claim.is_empty() {
                return Err(ConfigError::Jwt(
                    "auth.jwt.org_claim, scopes_claim and sessions_claim must name a claim",
                ));
            }
        }
        if self.audience.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::Jwt(
                "auth.jwt.audience must be set when JWTs are on: it keeps tokens the same issuer made \
                 for other services out",
            ));
        }
        Ok(())
    }
}

/// Rate limits of API keys and organizations (token buckets, counted on each node; the admin
/// key has none).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Requests each API key makes per second, sustained.
    pub key_per_second: NonZeroU32,
    /// Requests an API key may make at once after a quiet spell.
    pub key_burst: NonZeroU32,
    /// Requests all keys of an organization make per second, sustained.
    pub org_per_second: NonZeroU32,
    pub org_burst: NonZeroU32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { key_per_second: nz!(50), key_burst: nz!(100), org_per_second: nz!(200), org_burst: nz!(400) }
    }
}

/// The audit log: every call that changes something, and every refused authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// How long entries are kept; 0 keeps them for ever.
    pub retention_ms: u64,
    /// How often entries past `retention_ms` are deleted.
    pub retention_sweep_ms: NonZeroU64,
    /// Entries waiting to be written before a request waits for the writer (it never drops one).
    pub queue: NonZeroUsize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention_ms: 90 * 24 * 3_600_000, retention_sweep_ms: nz!(3_600_000), queue: nz!(10_000) }
    }
}

/// How long the event log, webhook deliveries and messages are kept, and how they are swept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// How long events are kept; 0 keeps them for ever.
    pub events_ms: u64,
    /// How long finished webhook deliveries (and their attempts) are kept; 0 keeps them as
    /// long as their events.
    pub deliveries_ms: u64,
    /// How long messages that have nothing left to do are kept; 0 keeps them for ever.
    pub messages_ms: u64,
    /// How often each node sweeps.
    pub sweep_ms: NonZeroU64,
    /// Rows a sweep looks at per batch (each batch is one short write).
    pub batch: NonZeroU32,
    /// The pause between two batches, which leaves the database to the writes that send.
    pub pause_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events_ms: 90 * 24 * 3_600_000,
            deliveries_ms: 30 * 24 * 3_600_000,
            messages_ms: 0,
            sweep_ms: nz!(3_600_000),
            batch: nz!(1_000),
            pause_ms: 50,
        }
    }
}

/// The engine that runs sessions and sends messages.
///
/// The engine reads these as plain numbers; [`Config::validate`] refuses the zeros that
/// cannot work.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// How many queued messages a session claims at once.
    pub send_batch: NonZeroU32,
    /// How long a claimed message stays claimed; after that (a node died mid-send) it is sent again.
    pub send_lease_ms: u64,
    /// Attempts before a send that keeps failing in a retryable way is marked failed.
    pub send_max_attempts: NonZeroU32,
    /// First retry delay of a failed send; doubles with each attempt.
    pub send_retry_base_ms: u64,
    /// First reconnect delay after a lost connection; doubles up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: NonZeroU64,
    /// How many sessions connect at the same time when wagate starts.
    pub resume_concurrency: NonZeroUsize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            send_batch: nz!(64),
            send_lease_ms: 30_000,
            send_max_attempts: nz!(5),
            send_retry_base_ms: 2_000,
            reconnect_min_ms: 1_000,
            reconnect_max_ms: nz!(60_000),
            resume_concurrency: nz!(8),
        }
    }
}

/// The live event streams (SSE and WebSocket).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsConfig {
    /// How many events a live subscriber may fall behind before it is cut off (it can resume
    /// from the log with its last event id).
    pub stream_buffer: NonZeroUsize,
    /// How long a WebSocket subscriber without query parameters has to send its filters.
    pub ws_hello_ms: u64,
    /// How often the log is read when no write of this node announced new events.
    pub poll_interval_ms: NonZeroU64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self { stream_buffer: nz!(4096), ws_hello_ms: 1_000, poll_interval_ms: nz!(1_000) }
    }
}

/// Webhook deliveries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Allow webhook URLs that resolve to loopback, private or link-local addresses.
    pub allow_private_targets: bool,
    /// How long one attempt may take, answer included.
    pub timeout_ms: NonZeroU64,
    /// Delays before the 2nd, 3rd, … attempt; after the last one the delivery is `failed`.
    pub retry_schedule_ms: Vec<u64>,
    /// Each delay is varied at random by up to this many percent either way.
    pub retry_jitter_percent: u32,
    /// Deliveries to one webhook in flight at once.
    pub max_in_flight: NonZeroU32,
    /// A webhook whose attempts have all failed for this long is disabled.
    pub disable_after_ms: u64,
    /// How long the old secret keeps signing after a rotation.
    pub secret_overlap_ms: u64,
    /// How often due retries are looked for when nothing else wakes the deliverer.
    pub poll_interval_ms: NonZeroU64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout_ms: nz!(15_000),
            // 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 28 hours in all.
            retry_schedule_ms: vec![
                5_000,
                300_000,
                1_800_000,
                2 * HOUR_MS,
                5 * HOUR_MS,
                10 * HOUR_MS,
                10 * HOUR_MS,
            ],
            retry_jitter_percent: 20,
            max_in_flight: nz!(16),
            disable_after_ms: 5 * 24 * HOUR_MS,
            secret_overlap_ms: 24 * HOUR_MS,
            poll_interval_ms: nz!(1_000),
        }
    }
}

/// `GET /metrics` (Prometheus).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Serve `/metrics` on this address (`host:port`) instead of the API's.
    pub listen: Option<String>,
    /// Ask for the admin key on `/metrics`, as on the API.
    pub require_key: bool,
}

/// The dashboard: a web page in the binary that drives the API with the admin key the
/// person signing in types.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UiConfig {
    /// Serve the dashboard.
    pub enabled: bool,
    /// Where: a path such as `/ui` (not `/`, and not under the API's own paths).
    pub path: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self { enabled: true, path: "/ui".into() }
    }
}

/// The connectors.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectorsConfig {
    pub sim: SimSettings,
    pub web: WebSettings,
}

/// The simulated network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SimSettings {
    pub enabled: bool,
    /// How long each QR code is shown before the next one.
    pub qr_interval_ms: NonZeroU64,
    /// How many QR codes are shown before linking gives up.
    pub qr_max_codes: NonZeroU32,
    /// How long a virtual contact takes to confirm delivery.
    pub delivery_delay_ms: u64,
    /// How long after delivery a recipient reads a message.
    pub read_delay_ms: u64,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            qr_interval_ms: nz!(20_000),
            qr_max_codes: nz!(6),
            delivery_delay_ms: 200,
            read_delay_ms: 2_000,
        }
    }
}

/// Real WhatsApp accounts, linked as a companion device (`"connector":"web"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebSettings {
    pub enabled: bool,
    /// WhatsApp Web's WebSocket endpoint; another one points the connector at a test server.
    pub ws_url: String,
    /// The WhatsApp Web version announced (`2.3000.1023456789`); unset, the current one is
    /// asked of web.whatsapp.com at each connect.
    pub client_version: Option<String>,
    /// How long a send waits for WhatsApp's server to acknowledge it before it is retried
    /// (with the same message id, so WhatsApp does not show it twice).
    pub ack_timeout_ms: NonZeroU64,
    /// How long a connection may wait for WhatsApp's first answer (its handshake, a QR code, a
    /// refusal) before the session is reported `disconnected` (unreachable) and tried again.
    pub connect_timeout_ms: NonZeroU64,
}

/// The connector's own defaults ([`WebConfig`]), in configuration units.
impl Default for WebSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ws_url: WebConfig::WHATSAPP_WS_URL.into(),
            client_version: None,
            ack_timeout_ms: nz!(WebConfig::ACK_TIMEOUT.as_millis() as u64),
            connect_timeout_ms: nz!(WebConfig::CONNECT_TIMEOUT.as_millis() as u64),
        }
    }
}

/// Bulk campaigns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CampaignsConfig {
    /// Most recipients one campaign takes.
    pub max_recipients: NonZeroUsize,
    /// Largest campaign request body (JSON or CSV upload); other routes keep `api.max_body_bytes`.
    pub max_body_bytes: NonZeroUsize,
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        Self { max_recipients: nz!(100_000), max_body_bytes: nz!(64 * 1024 * 1024) }
    }
}

/// How fast each session sends, by connector; a session's `config.pacing` overrides any field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PacingConfig {
    /// The window the caps count over (a rolling day).
    pub window_ms: NonZeroU64,
    pub web: Pacing,
    pub sim: Pacing,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            window_ms: nz!(24 * HOUR_MS),
            // WhatsApp bans accounts that send like machines: many messages in a burst, to
            // many people, in the same rhythm. 5–10 s apart with "typing…" first (about what a
            // person manages) and at most 1,000 a day keeps a linked phone within what people
            // report as safe; raise them only for an account with a history.
            web: Pacing {
                min_interval_ms: 5_000,
                jitter_ms: 5_000,
                typing_ms_per_char: 50,
                typing_max_ms: 3_000,
                per_recipient_limit: 0,
                daily_cap: 1_000,
            },
            // Benchmarks measure wagate, not a pause.
            sim: Pacing::NONE,
        }
    }
}

impl PacingConfig {
    /// The defaults for sessions of a connector.
    pub fn defaults(&self, connector: wagate_core::ConnectorKind) -> &Pacing {
        match connector {
            wagate_core::ConnectorKind::Web => &self.web,
            wagate_core::ConnectorKind::Sim => &self.sim,
        }
    }
}

/// One session's send pacing. Zero turns a setting off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Pacing {
    /// Least time between two sends.
    pub min_interval_ms: u64,
    /// Up to this much more, at random, after each send.
    pub jitter_ms: u64,
    /// Show "typing…" to the recipient before each send, for this long per character of text.
    pub typing_ms_per_char: u64,
    /// Longest "typing…".
    pub typing_max_ms: u64,
    /// Most messages to one recipient per window.
    pub per_recipient_limit: u32,
    /// Most messages per window.
    pub daily_cap: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::NONE
    }
}

impl Pacing {
    /// No pacing at all: sends go as fast as the connection takes them.
    pub const NONE: Pacing = Pacing {
        min_interval_ms: 0,
        jitter_ms: 0,
        typing_ms_per_char: 0,
        typing_max_ms: 0,
        per_recipient_limit: 0,
        daily_cap: 0,
    };

    /// Whether sends go one at a time (any setting is on).
    pub fn is_paced(&self) -> bool {
        *self != Pacing::NONE
    }

    /// These settings with the fields of a session's `config.pacing` (a JSON object) put over
    /// them; the error says what is wrong with the overrides.
    pub fn with_overrides(&self, overrides: &serde_json::Value) -> Result<Pacing, String> {
        let serde_json::Value::Object(fields) = overrides else {
            return Err("must be a JSON object".into());
        };
        let mut merged = serde_json::to_value(self).map_err(|e| e.to_string())?;
        for (key, value) in fields {
            merged[key] = value.clone();
        }
        serde_json::from_value(merged).map_err(|e| e.to_string())
    }
}

/// Media files: where S3 is, and the largest file each kind of media message takes
/// (WhatsApp's limits).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaConfig {
    /// Allow `link` downloads from loopback, private and link-local addresses.
    pub allow_private_links: bool,
    /// How long downloading a `link` may take.
    pub download_timeout_ms: NonZeroU64,
    /// With `s3://` media: the endpoint of an S3-compatible server (MinIO, …); AWS when unset.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    /// Credentials; when unset, the usual `AWS_*` environment variables are used.
    pub s3_access_key_id: Option<String>,
    #[serde(serialize_with = "masked::secret")]
    pub s3_secret_access_key: Option<SecretString>,
    /// Allow a plain-http endpoint (a local MinIO).
    pub s3_allow_http: bool,
    /// With `s3://` media: `GET /v1/media/{id}` redirects to a presigned URL instead of
    /// streaming the file through wagate.
    pub presigned_downloads: bool,
    /// How long a presigned URL works.
    pub presigned_expiry_ms: NonZeroU64,
    /// Media files older than this are deleted (their messages keep the metadata); 0 keeps
    /// them forever.
    pub retention_ms: u64,
    /// How often old media is looked for, when `retention_ms` is set.
    pub retention_sweep_ms: NonZeroU64,
    pub max_image_bytes: u64,
    pub max_video_bytes: u64,
    pub max_audio_bytes: u64,
    pub max_document_bytes: NonZeroU64,
    pub max_sticker_bytes: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            allow_private_links: false,
            download_timeout_ms: nz!(60_000),
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
            presigned_downloads: false,
            presigned_expiry_ms: nz!(300_000),
            retention_ms: 0,
            retention_sweep_ms: nz!(3_600_000),
            max_image_bytes: 5 * MIB,
            max_video_bytes: 16 * MIB,
            max_audio_bytes: 16 * MIB,
            max_document_bytes: nz!(100 * MIB),
            max_sticker_bytes: 500 * 1024,
        }
    }
}

impl MediaConfig {
    pub fn max_bytes(&self, kind: wagate_core::MediaKind) -> u64 {
        match kind {
            wagate_core::MediaKind::Image => self.max_image_bytes,
            wagate_core::MediaKind::Video => self.max_video_bytes,
            wagate_core::MediaKind::Audio => self.max_audio_bytes,
            wagate_core::MediaKind::Document => self.max_document_bytes.get(),
            wagate_core::MediaKind::Sticker => self.max_sticker_bytes,
        }
    }
}

/// Where media files are kept (`media_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaLocation {
    Directory(PathBuf),
    /// An S3 bucket (or an S3-compatible server's), under a key prefix.
    S3 {
        bucket: String,
        prefix: String,
    },
    Unsupported(String),
}

/// This node's part in a cluster (nodes sharing one PostgreSQL database; on SQLite, the one
/// node holds every session the same way).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeConfig {
    /// How often the node renews its sessions' leases and looks for sessions to take.
    pub heartbeat_ms: NonZeroU64,
    /// How long a lease lasts without renewal: a dead node's sessions move after this.
    pub lease_ttl_ms: u64,
    /// Most sessions this node runs.
    pub max_sessions: NonZeroU32,
    /// The address other nodes and operators reach this node's API at; defaults to `listen`.
    pub address: Option<String>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { heartbeat_ms: nz!(5_000), lease_ttl_ms: 15_000, max_sessions: nz!(10_000), address: None }
    }
}

/// How secrets serialize: masked, whoever serializes the configuration.
mod masked {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Serialize, Serializer};

    pub(super) const MASK: &str = "********";

    /// A secret as `********`.
    pub(super) fn secret<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        value.as_ref().map(|_| MASK).serialize(s)
    }

    /// A URL with its password, if any, as `********`.
    pub(super) fn password<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        value.as_ref().map(|url| super::mask_password(url.expose_secret())).serialize(s)
    }
}

/// The most rows a retention batch may look at: each is a bound variable of one statement.
const MAX_RETENTION_BATCH: u32 = 10_000;

/// A configuration that cannot work, with what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("listen = {0:?} is not a host:port address")]
    Listen(String),
    #[error("database_url = {0:?}: give sqlite://path/to/file.db or postgres://user@host/database")]
    DatabaseUrl(String),
    #[error("media_url = {0:?}: give a local directory (a path or file://…) or s3://bucket/prefix")]
    MediaUrl(String),
    #[error("{0} must be at most {1}")]
    TooLarge(&'static str, u64),
    #[error("node.lease_ttl_ms must be longer than node.heartbeat_ms (three heartbeats is usual)")]
    LeaseTtl,
    #[error(
        "ui.path = {0:?}: give a path such as /ui: a slash, then letters, digits, `-` or `_` (segments \
         apart by `/`), outside the API's own paths"
    )]
    UiPath(String),
    #[error("metrics.listen = {0:?} is not a host:port address")]
    MetricsListen(String),
    #[error("connectors.web.client_version = {0:?}: give three numbers, like 2.3000.1023456789")]
    ClientVersion(String),
    #[error("connectors.web.ws_url = {0:?}: give a ws:// or wss:// URL")]
    WsUrl(String),
    #[error("{0}")]
    Jwt(&'static str),
    #[error("auth.jwt.jwks_url = {0:?}: give an http:// or https:// URL")]
    JwksUrl(String),
    #[error(
        "connectors.web.ws_url = {0:?}: this build skips WhatsApp's certificate checks (feature \
         local-whatsapp) and only talks to a local test server; set connectors.web.ws_url to it"
    )]
    LocalWhatsapp(String),
}

impl Config {
    /// Loads defaults, then the config file, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file("wagate.toml")),
        }
        let config: Config =
            figment.merge(Env::prefixed("WAGATE_").split("__")).extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.database_url()?;
        if let MediaLocation::Unsupported(url) = self.media_location() {
            return Err(ConfigError::MediaUrl(url));
        }
        let web = &self.connectors.web;
        if let Some(version) = &web.client_version {
            if wagate_connect::web::parse_version(version).is_none() {
                return Err(ConfigError::ClientVersion(version.clone()));
            }
        }
        if !(web.ws_url.starts_with("ws://") || web.ws_url.starts_with("wss://")) {
            return Err(ConfigError::WsUrl(web.ws_url.clone()));
        }
        if wagate_connect::web::SKIPS_CERTIFICATE_CHECKS && reaches_whatsapp(&web.ws_url) {
            return Err(ConfigError::LocalWhatsapp(web.ws_url.clone()));
        }
        if let Some(listen) = &self.metrics.listen {
            use std::net::ToSocketAddrs;
            if listen.to_socket_addrs().map_or(true, |mut a| a.next().is_none()) {
                return Err(ConfigError::MetricsListen(listen.clone()));
            }
        }
        if self.ui.enabled && !ui_path_is_free(&self.ui.path) {
            return Err(ConfigError::UiPath(self.ui.path.clone()));
        }
        if self.retention.batch.get() > MAX_RETENTION_BATCH {
            return Err(ConfigError::TooLarge("retention.batch", u64::from(MAX_RETENTION_BATCH)));
        }
        if self.webhooks.retry_jitter_percent > 100 {
            return Err(ConfigError::TooLarge("webhooks.retry_jitter_percent", 100));
        }
        if self.node.lease_ttl_ms <= self.node.heartbeat_ms.get() {
            return Err(ConfigError::LeaseTtl);
        }
        self.auth.jwt.validate()
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        use std::net::ToSocketAddrs;
        self.listen
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ConfigError::Listen(self.listen.clone()))
    }

    /// The configuration as TOML, with the admin key, the S3 secret and any password in the
    /// database URL replaced by `********`.
    pub fn to_masked_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Where media files are kept.
    pub fn media_location(&self) -> MediaLocation {
        let Some(url) = &self.media_url else {
            return MediaLocation::Directory(self.data_dir.join("media"));
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return MediaLocation::Unsupported(url.clone());
            }
            return MediaLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            };
        }
        if let Some(path) = url.strip_prefix("file://") {
            return MediaLocation::Directory(PathBuf::from(path));
        }
        if url.contains("://") {
            return MediaLocation::Unsupported(url.clone());
        }
        MediaLocation::Directory(PathBuf::from(url))
    }

    /// The database URL in force.
    pub fn database_url(&self) -> Result<String, ConfigError> {
        match self.database_url.as_ref().map(ExposeSecret::expose_secret) {
            None => Ok(format!("sqlite://{}", self.data_dir.join("wagate.db").display())),
            Some(url)
                if ["sqlite:", "postgres://", "postgresql://"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme)) =>
            {
                Ok(url.to_owned())
            }
            Some(url) => Err(ConfigError::DatabaseUrl(mask_password(url))),
        }
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:********@host/…`.
pub(crate) fn mask_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Whether the dashboard can live at `path`: a plain path that no API route starts with.
fn ui_path_is_free(path: &str) -> bool {
    const TAKEN: [&str; 7] = ["v1", "hooks", "docs", "openapi.json", "metrics", "healthz", "readyz"];
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    segments
        .iter()
        .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        && !TAKEN.contains(&segments[0])
}

/// Whether a WebSocket URL points at WhatsApp's own servers (or names no host at all).
fn reaches_whatsapp(ws_url: &str) -> bool {
    match url::Url::parse(ws_url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)) {
        Some(host) => ["whatsapp.com", "whatsapp.net"]
            .iter()
            .any(|domain| host == *domain || host.ends_with(&format!(".{domain}"))),
        None => true,
    }
}

/// Milliseconds from configuration as a duration.
pub fn ms(value: impl Into<u64>) -> Duration {
    Duration::from_millis(value.into())
}

#[cfg(test)]
// figment's Jail fixes the closures' error type, a large one.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn a_local_whatsapp_build_knows_whatsapps_own_endpoints() {
        assert!(reaches_whatsapp("wss://web.whatsapp.com/ws/chat"));
        assert!(reaches_whatsapp("wss://g.WhatsApp.net/ws/chat"));
        assert!(reaches_whatsapp("wss://whatsapp.com/ws"));
        assert!(reaches_whatsapp("not a url"));
        assert!(!reaches_whatsapp("ws://127.0.0.1:7070/ws/chat"));
        assert!(!reaches_whatsapp("wss://fakewhatsapp.com/ws/chat"));
        assert!(!reaches_whatsapp("wss://whatsapp.com.example/ws/chat"));
    }

    #[test]
    fn environment_variables_override_the_file_and_nest_with_double_underscores() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("wagate.toml", "listen = \"127.0.0.1:9000\"\nnode_id = \"from-file\"")?;
            jail.set_env("WAGATE_LISTEN", "0.0.0.0:8181");
            jail.set_env("WAGATE_DATA_DIR", "/var/lib/wagate");
            jail.set_env("WAGATE_ADMIN_KEY", "secret");
            jail.set_env("WAGATE_LOG_FORMAT", "json");
            jail.set_env("WAGATE_CONNECTORS__SIM__READ_DELAY_MS", "5");
            jail.set_env("WAGATE_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true");
            jail.set_env("WAGATE_WEBHOOKS__RETRY_SCHEDULE_MS", "[10, 20]");
            jail.set_env("WAGATE_AUTH__JWT__PUBLIC_KEY_FILES", "[\"/etc/wagate/issuer.pem\"]");
            jail.set_env("WAGATE_AUTH__JWT__AUDIENCE", "wagate");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.auth.jwt.public_key_files, [PathBuf::from("/etc/wagate/issuer.pem")]);
            assert!(config.auth.jwt.enabled());
            assert_eq!(config.listen, "0.0.0.0:8181");
            assert_eq!(config.node_id, "from-file");
            assert_eq!(config.data_dir, PathBuf::from("/var/lib/wagate"));
            assert_eq!(config.admin_key.as_ref().map(ExposeSecret::expose_secret), Some("secret"));
            assert_eq!(config.log_format, LogFormat::Json);
            assert_eq!(config.connectors.sim.read_delay_ms, 5);
            assert!(config.webhooks.allow_private_targets);
            assert_eq!(config.webhooks.retry_schedule_ms, [10, 20]);
            assert_eq!(config.database_url().unwrap(), "sqlite:///var/lib/wagate/wagate.db");
            Ok(())
        });
    }

    #[test]
    fn bad_values_stop_the_start_with_the_key_named() {
        figment::Jail::expect_with(|jail| {
            for (var, value, expected) in [
                ("WAGATE_LISTEN", "nowhere", "listen"),
                ("WAGATE_DATABASE_URL", "mysql://localhost/wagate", "database_url"),
                ("WAGATE_MEDIA_URL", "gs://bucket/media", "media_url"),
                ("WAGATE_ENGINE__SEND_BATCH", "0", "engine.send_batch"),
                ("WAGATE_WEBHOOKS__RETRY_JITTER_PERCENT", "150", "webhooks.retry_jitter_percent"),
                ("WAGATE_LOG_FORMAT", "xml", "log_format"),
                ("WAGATE_AUTH__JWT__JWKS_URL", "issuer.example/jwks", "auth.jwt.jwks_url"),
                ("WAGATE_AUTH__JWT__HS256_SECRET", "0123456789abcdef0123456789abcdef", "auth.jwt.audience"),
            ] {
                jail.clear_env();
                jail.set_env(var, value);
                let error = Config::load(None).expect_err(var).to_string();
                assert!(error.to_lowercase().contains(expected), "{var}={value}: {error}");
            }
            Ok(())
        });
    }

    #[test]
    fn a_zero_where_zero_cannot_work_stops_the_start_with_the_key_named() {
        figment::Jail::expect_with(|jail| {
            for (var, key) in [
                ("WAGATE_API__MAX_BODY_BYTES", "api.max_body_bytes"),
                ("WAGATE_API__HOOK_CALLS_PER_MINUTE", "api.hook_calls_per_minute"),
                ("WAGATE_WEBHOOKS__TIMEOUT_MS", "webhooks.timeout_ms"),
                ("WAGATE_CONNECTORS__SIM__QR_MAX_CODES", "connectors.sim.qr_max_codes"),
                ("WAGATE_MEDIA__MAX_DOCUMENT_BYTES", "media.max_document_bytes"),
                ("WAGATE_NODE__HEARTBEAT_MS", "node.heartbeat_ms"),
                ("WAGATE_ENGINE__RESUME_CONCURRENCY", "engine.resume_concurrency"),
                ("WAGATE_NODE__MAX_SESSIONS", "node.max_sessions"),
                ("WAGATE_PACING__WINDOW_MS", "pacing.window_ms"),
                ("WAGATE_EVENTS__STREAM_BUFFER", "events.stream_buffer"),
            ] {
                jail.clear_env();
                jail.set_env(var, "0");
                let error = Config::load(None).expect_err(var).to_string();
                assert!(error.to_lowercase().contains(key), "{var}=0: {error}");
            }
            jail.clear_env();
            jail.create_file("zero.toml", "[webhooks]\nmax_in_flight = 0")?;
            let error = Config::load(Some(Path::new("zero.toml"))).expect_err("a zero").to_string();
            assert!(error.contains("webhooks.max_in_flight"), "{error}");
            assert!(error.contains("nonzero"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn the_dashboard_path_is_a_plain_path_outside_the_api() {
        for good in ["/ui", "/admin/dashboard", "/wa-gate_1"] {
            assert!(ui_path_is_free(good), "{good}");
        }
        for bad in ["", "/", "ui", "/ui/", "/v1", "/v1/ui", "/docs", "/hooks", "/a//b", "/ui?x", "/../x"] {
            assert!(!ui_path_is_free(bad), "{bad}");
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("WAGATE_UI__PATH", "/v1");
            let error = Config::load(None).expect_err("a taken path").to_string();
            assert!(error.contains("ui.path"), "{error}");
            jail.set_env("WAGATE_UI__ENABLED", "false");
            assert!(Config::load(None).is_ok(), "a path that is not served is not checked");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let error = Config::load(Some(Path::new("/nonexistent/wagate.toml"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/wagate.toml"));
    }

    /// Every leaf of the configuration as a dotted key with its default, in JSON.
    fn defaults() -> Vec<(String, serde_json::Value)> {
        fn walk(prefix: &str, value: serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
            match value {
                serde_json::Value::Object(fields) => {
                    for (name, value) in fields {
                        let key = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
                        walk(&key, value, out);
                    }
                }
                leaf => out.push((prefix.to_owned(), leaf)),
            }
        }
        let mut out = Vec::new();
        walk("", serde_json::to_value(Config::default()).unwrap(), &mut out);
        out
    }

    #[test]
    fn the_configuration_reference_documents_every_key_with_its_default() {
        let doc = include_str!("../../../docs/configuration.md");
        let rows: std::collections::HashMap<&str, Vec<&str>> = doc
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
                (cells[0].trim_matches('`'), cells)
            })
            .collect();
        let defaults = defaults();
        for (key, default) in &defaults {
            let row = rows.get(key.as_str()).unwrap_or_else(|| panic!("docs/configuration.md lacks `{key}`"));
            let env = format!("WAGATE_{}", key.to_uppercase().replace('.', "__"));
            assert_eq!(row[1].trim_matches('`'), env, "environment variable of `{key}`");
            let documented = row[2].trim_matches('`').replace(' ', "");
            let expected = if default.is_null() { "none".to_owned() } else { default.to_string() };
            assert_eq!(documented, expected, "default of `{key}`");
            assert!(row[3].len() > 10, "`{key}` needs a meaning");
        }
        for key in rows.keys() {
            assert!(
                defaults.iter().any(|(k, _)| k == key),
                "docs/configuration.md documents `{key}`, which does not exist"
            );
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output_and_the_printed_configuration() {
        let mut config = Config {
            admin_key: Some("very-secret".into()),
            master_key: Some("master-secret".into()),
            database_url: Some("postgres://wagate:hunter2@db.internal/wagate".into()),
            ..Config::default()
        };
        config.media.s3_secret_access_key = Some("s3-secret".into());
        config.auth.jwt.hs256_secret = Some("jwt-secret-of-at-least-thirty-two-bytes".into());
        let shown = format!("{config:?} {config:#?}");
        for secret in ["very-secret", "master-secret", "hunter2", "s3-secret", "jwt-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("REDACTED"), "{shown}");
        let printed = config.to_masked_toml().unwrap();
        assert!(!printed.contains("s3-secret") && !printed.contains("master-secret"), "{printed}");
        assert!(!printed.contains("jwt-secret"), "{printed}");
        assert!(printed.contains("s3_secret_access_key = \"********\""), "{printed}");
        assert_eq!(config.database_url().unwrap(), "postgres://wagate:hunter2@db.internal/wagate");
    }

    #[test]
    fn the_printed_configuration_hides_secrets_and_reads_back() {
        let config = Config {
            admin_key: Some("very-secret".into()),
            database_url: Some("postgres://wagate:hunter2@db.internal/wagate".into()),
            ..Config::default()
        };
        let printed = config.to_masked_toml().unwrap();
        assert!(!printed.contains("very-secret") && !printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("postgres://wagate:********@db.internal/wagate"), "{printed}");
        let read: Config = toml::from_str(&printed).unwrap();
        assert_eq!(read.webhooks.retry_schedule_ms, config.webhooks.retry_schedule_ms);
        assert_eq!(read.listen, config.listen);
    }
}
