//! `wagate`: parses the command line and hands over to the library.

// `wagate config` prints the configuration: that output is the command's purpose.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};
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
    /// Write a consistent copy of the SQLite database to FILE while wagate may be running.
    Backup {
        /// The copy to write; must not exist yet.
        file: PathBuf,
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
        Command::Backup { file } => {
            wagate_server::backup(&config, &file).await?;
            tracing::info!(file = %file.display(), "backup written");
            Ok(())
        }
    }
}
