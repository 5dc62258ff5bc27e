//! wagate-server: the `wagate` binary's library: configuration, the HTTP API and the engine
//! that runs sessions. `main.rs` only parses the command line and calls [`Server::start`].

mod api;
mod audit;
mod auth;
pub mod config;
mod engine;
mod group_commit;
mod http;
mod master_key;
mod media;
mod metrics;
mod qr;
mod retention;
mod tasks;
mod ui;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wagate_connect::sim::{SimConfig, SimConnector, SimNetwork};
use wagate_connect::web::{WebConfig, WebConnector};
use wagate_connect::Connector;
use wagate_core::{Clock, SystemClock};
use wagate_store::{Keyring, PgStore, SqliteStore, Store};

use config::ms;
pub use config::Config;
use engine::{Engine, Membership};
pub use master_key::{rotate as rotate_master_key, Rotation};
use tasks::Tasks;
use webhooks::Deliverer;

/// What every request handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub engine: Arc<Engine>,
    pub config: Arc<Config>,
    pub admin_key: Arc<str>,
    pub deliverer: Arc<Deliverer>,
    /// Media files.
    pub media: Arc<media::MediaStore>,
    /// Calls per trigger hook, counted on this node for rate limiting.
    pub hook_limits: Arc<api::HookLimits>,
    /// The simulated network, when the sim connector is enabled.
    pub sim: Option<Arc<SimNetwork>>,
    /// Cancelled when the server starts shutting down, so long waits end early.
    pub stopping: CancellationToken,
    /// When API keys were used, written in batches.
    pub key_usage: Arc<auth::KeyUsage>,
    /// Where requests leave their audit entries.
    pub audit: Arc<audit::AuditTrail>,
    /// The token buckets of keys and organizations, on this node.
    pub rate_limits: Arc<auth::RateLimits>,
    /// The JWT verifier, when JWTs are accepted.
    pub jwt: Option<Arc<auth::Jwt>>,
}

/// A running wagate: HTTP API, engine and store.
pub struct Server {
    addr: SocketAddr,
    admin_key: Arc<str>,
    engine: Arc<Engine>,
    deliverer: Arc<Deliverer>,
    store: Arc<dyn Store>,
    /// The HTTP listeners, the metrics that follow the event feed and the media retention:
    /// the first to stop, so that no request arrives while the rest stops.
    front: Tasks,
    http: JoinHandle<std::io::Result<()>>,
    /// What requests leave to be written in batches (when keys were used): stopped after the
    /// HTTP front, so that the last requests' records are written too.
    recorders: Tasks,
    /// The `/metrics` listener, when it has its own address.
    metrics_http: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Opens the store, resumes sessions and serves the API on `listener`.
    pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        Self::start_with_clock(config, listener, Arc::new(SystemClock)).await
    }

    /// [`Server::start`] with `clock` as the server's time, which tests move forward.
    pub async fn start_with_clock(
        config: Config,
        listener: TcpListener,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        if wagate_connect::web::SKIPS_CERTIFICATE_CHECKS {
            tracing::warn!(
                ws_url = %config.connectors.web.ws_url,
                "this build skips WhatsApp's certificate checks (feature local-whatsapp): it is for a local \
                 test server only, never for real WhatsApp accounts"
            );
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let admin_key: Arc<str> =
            auth::admin_key(config.admin_key.as_ref().map(ExposeSecret::expose_secret), &config.data_dir)
                .context("cannot read or create the admin key")?
                .into();
        let keyring = master_key::keyring(&config)?;
        let database_url = config.database_url()?;
        let store = open_store(&database_url, keyring).await?;
        let addr = listener.local_addr()?;

        let mut connectors: Vec<Arc<dyn Connector>> = Vec::new();
        let sim = config.connectors.sim.enabled.then(|| {
            let settings = &config.connectors.sim;
            SimNetwork::new(SimConfig {
                qr_interval: ms(settings.qr_interval_ms),
                qr_max_codes: settings.qr_max_codes.get(),
                delivery_delay: ms(settings.delivery_delay_ms),
                read_delay: ms(settings.read_delay_ms),
            })
        });
        if let Some(network) = &sim {
            connectors.push(Arc::new(SimConnector::new(Arc::clone(network))));
        }
        let media = Arc::new(media::MediaStore::open(&config, Arc::clone(&store))?);
        if config.connectors.web.enabled {
            let settings = &config.connectors.web;
            let web = WebConfig {
                ws_url: settings.ws_url.clone(),
                client_version: settings
                    .client_version
                    .as_deref()
                    .and_then(wagate_connect::web::parse_version),
                ack_timeout: ms(settings.ack_timeout_ms),
                connect_timeout: ms(settings.connect_timeout_ms),
                ..WebConfig::default()
            };
            let keys: Arc<dyn wagate_core::DeviceKeys> = store.clone();
            connectors.push(Arc::new(WebConnector::new(keys, media.clone(), web)));
        }
        let engine = Engine::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            config.engine.clone(),
            &config.events,
            config.pacing.clone(),
            Membership::new(
                &config.node_id,
                config.node.address.clone().unwrap_or_else(|| addr.to_string()),
                config.node.clone(),
                clock.now(),
            ),
            connectors,
        );
        let front = Tasks::default();
        front.spawn(Arc::clone(&media).run_retention(Arc::clone(&clock), front.stopping()));
        front.spawn(retention::run(
            Arc::clone(&store),
            Arc::clone(&clock),
            config.retention.clone(),
            front.stopping(),
        ));
        metrics::install();
        front.spawn(metrics::observe(Arc::clone(&engine), front.stopping()));
        // Other nodes may share the database (PostgreSQL): hear them, and let the sim network
        // reach their sim sessions.
        let signals = engine.store().listen().await.context("cannot listen for other nodes")?;
        if let (Some(_), Some(network)) = (&signals, &sim) {
            network.reach_elsewhere(Arc::new(engine::SimsElsewhere::new(&engine)));
        }
        let resumed = engine.resume().await.context("cannot resume sessions")?;
        engine.start_heartbeat(signals);
        let deliverer = Arc::new(
            Deliverer::start(Arc::clone(&engine), config.webhooks.clone())
                .context("cannot start the webhook deliverer")?,
        );

        let recorders = Tasks::default();
        let key_usage = Arc::new(auth::KeyUsage::default());
        recorders.spawn(Arc::clone(&key_usage).run(
            Arc::clone(&store),
            ms(config.auth.last_used_flush_ms.get()),
            recorders.stopping(),
        ));
        let audit = Arc::new(audit::AuditTrail::start(
            Arc::clone(&store),
            Arc::clone(&clock),
            &config.audit,
            &recorders,
        ));
        let rate_limits = Arc::new(auth::RateLimits::new(&config.rate_limits));
        {
            // Buckets full again are forgotten, so memory follows the callers of the last minute.
            let (limits, stopping) = (Arc::clone(&rate_limits), front.stopping());
            front.spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
                while stopping.run_until_cancelled(every.tick()).await.is_some() {
                    limits.forget_idle();
                }
            });
        }
        let jwt = auth::Jwt::start(&config.auth.jwt).await?;
        if let Some(jwt) = &jwt {
            front.spawn(
                Arc::clone(jwt).refresh_keys(ms(config.auth.jwt.jwks_refresh_ms.get()), front.stopping()),
            );
        }
        let state = AppState {
            jwt,
            rate_limits,
            audit,
            key_usage,
            stopping: front.stopping(),
            engine: Arc::clone(&engine),
            deliverer: Arc::clone(&deliverer),
            hook_limits: Arc::new(api::HookLimits::new(config.api.hook_calls_per_minute)),
            media,
            config: Arc::new(config),
            admin_key: Arc::clone(&admin_key),
            sim,
        };
        let metrics_http = match state.config.metrics.listen.clone() {
            Some(listen) => {
                let listener =
                    TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
                let app = axum::Router::from(api::metrics_routes(&state)).with_state(state.clone());
                let (stopping, config) = (state.stopping.clone(), Arc::clone(&state.config));
                Some(front.spawn(async move { http::serve(listener, app, &config.api, stopping).await }))
            }
            None => None,
        };
        let (stopping, config) = (state.stopping.clone(), Arc::clone(&state.config));
        let app = api::router(state);
        let http = front.spawn(async move { http::serve(listener, app, &config.api, stopping).await });
        let database = config::mask_password(&database_url);
        tracing::info!(%addr, resumed, %database, "wagate is listening");
        Ok(Self { addr, admin_key, engine, deliverer, store, front, http, recorders, metrics_http })
    }

    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store this server runs on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn admin_key(&self) -> &str {
        &self.admin_key
    }

    /// Stops taking requests, finishes the ones in flight and the webhook attempts in flight,
    /// closes sessions (they resume on next start) and closes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.front.stop().await;
        self.http.await??;
        if let Some(metrics_http) = self.metrics_http {
            metrics_http.await??;
        }
        self.recorders.stop().await;
        self.deliverer.stop().await;
        self.engine.shutdown().await;
        self.store.close().await;
        tracing::info!("wagate stopped");
        Ok(())
    }
}

/// Opens the store the URL names (SQLite or PostgreSQL), running pending migrations, with the
/// master keys that seal its secrets.
async fn open_store(database_url: &str, keyring: Keyring) -> anyhow::Result<Arc<dyn Store>> {
    let shown = config::mask_password(database_url);
    let store: Arc<dyn Store> = if database_url.starts_with("sqlite:") {
        Arc::new(
            SqliteStore::open(database_url, keyring)
                .await
                .with_context(|| format!("cannot open the database {shown}"))?,
        )
    } else {
        Arc::new(
            PgStore::open(database_url, keyring)
                .await
                .with_context(|| format!("cannot open the database {shown}"))?,
        )
    };
    Ok(store)
}

/// Brings the configured database's schema up to date, and nothing else.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    open_store(&config.database_url()?, master_key::keyring(config)?).await?.close().await;
    Ok(())
}

/// Writes a consistent copy of the configured SQLite database to `file`.
pub async fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    if file.exists() {
        anyhow::bail!("{} already exists; a backup is written to a new file", file.display());
    }
    let database_url = config.database_url()?;
    if !database_url.starts_with("sqlite:") {
        anyhow::bail!("wagate backup copies a SQLite database; back up PostgreSQL with pg_dump");
    }
    SqliteStore::backup(&database_url, file)
        .await
        .with_context(|| format!("cannot write a backup of {database_url} to {}", file.display()))
}

/// Runs wagate until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let addr = config.listen_addr()?;
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let server = Server::start(config, listener).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
