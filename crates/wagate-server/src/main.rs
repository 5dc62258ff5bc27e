//! `wagate`: parses the command line and hands over to the library.

// `wagate config` prints the configuration: that output is the command's purpose.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use tracing_subscriber::EnvFilter;
use wagate_server::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "wagate", version, about = "A self-hosted WhatsApp gateway")]
struct Cli {
    /// Configuration file (default: ./wagate.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve,
    /// Print the configuration in force (defaults, file, environment), secrets masked.
    Config,
    /// Run the database migrations and exit (`serve` runs them too).
    Migrate,
    /// Ask the running node (this configuration's `node_id`) to drain: it takes no more
    /// sessions and hands its own to other nodes (for a container's preStop hook).
    Drain {
        /// Where wagate listens; defaults to the configured `listen` address.
        #[arg(long)]
        url: Option<String>,
    },
    /// Write a consistent copy of the SQLite database to FILE while wagate may be running.
    Backup {
        /// The copy to write; must not exist yet.
        file: PathBuf,
    },
    /// Make a new master key current and seal every secret again under it, while the gateway
    /// may run (see docs/operations.md).
    RotateMasterKey,
    /// Exit 0 when the running gateway answers `/healthz` (for container health checks).
    Healthcheck {
        /// Where wagate listens; defaults to the configured `listen` address.
        #[arg(long)]
        url: Option<String>,
    },
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    init_logging(config.log_format);
    match cli.command {
        Command::Serve => wagate_server::run(config).await,
        Command::Config => {
            print!("{}", config.to_masked_toml()?);
            Ok(())
        }
        Command::Healthcheck { url } => {
            let url =
                url.unwrap_or_else(|| format!("http://{}", config.listen.replace("0.0.0.0", "127.0.0.1")));
            let response = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?
                .get(format!("{}/healthz", url.trim_end_matches('/')))
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "/healthz answered {}", response.status());
            Ok(())
        }
        Command::Drain { url } => {
            let url =
                url.unwrap_or_else(|| format!("http://{}", config.listen.replace("0.0.0.0", "127.0.0.1")));
            let key = config
                .admin_key
                .as_ref()
                .map(|key| key.expose_secret().to_owned())
                .or_else(|| std::fs::read_to_string(config.data_dir.join("admin.key")).ok())
                .map(|key| key.trim().to_owned())
                .ok_or_else(|| {
                    anyhow::anyhow!("drain needs the admin key (WAGATE_ADMIN_KEY or the data dir's)")
                })?;
            let response = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?
                .post(format!("{}/v1/cluster/nodes/{}/drain", url.trim_end_matches('/'), config.node_id))
                .bearer_auth(key)
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "drain answered {}", response.status());
            Ok(())
        }
        Command::Migrate => {
            wagate_server::migrate(&config).await?;
            tracing::info!("database schema is up to date");
            Ok(())
        }
        Command::RotateMasterKey => {
            let rotation = wagate_server::rotate_master_key(&config).await?;
            tracing::info!(
                current = %rotation.current,
                previous = ?rotation.previous,
                resealed = rotation.resealed,
                generated = rotation.generated,
                "secrets sealed again under the current master key"
            );
            Ok(())
        }
        Command::Backup { file } => {
            wagate_server::backup(&config, &file).await?;
            tracing::info!(file = %file.display(), "backup written");
            Ok(())
        }
    }
}
