//! `fake-whatsapp --listen ADDR`: runs the fake server and prints one JSON
//! line with its URLs once it is ready.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use fake_whatsapp::{Config, FakeServer};

#[derive(Parser)]
#[command(about = "A local fake WhatsApp server for whatsapp-rust clients (tests and development only)")]
struct Args {
    /// Address for the WebSocket endpoint and the control API; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed of the server's Noise static key; keep it to let clients resume with IK after a restart.
    #[arg(long, default_value = "fake-whatsapp")]
    seed: String,
    /// How long a virtual contact holds back its delivery receipt, in milliseconds.
    #[arg(long, default_value_t = 0)]
    contact_delivery_delay_ms: u64,
    /// How long after delivery a virtual contact reads a message, in milliseconds; negative: never.
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    contact_read_delay_ms: i64,
    /// How many QR codes a new companion may show before it gives up (WhatsApp gives six).
    #[arg(long, default_value_t = 6)]
    qr_refs: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = Config {
        seed: args.seed,
        contact_delivery_delay: Duration::from_millis(args.contact_delivery_delay_ms),
        contact_read_delay: u64::try_from(args.contact_read_delay_ms).ok().map(Duration::from_millis),
        qr_refs: args.qr_refs,
    };
    let running = FakeServer::start(config, args.listen).await?;
    let ready = serde_json::json!({
        "ws_url": running.ws_url,
        "control_url": running.control_url,
        "media_host": running.server.media_host(),
    });
    #[allow(clippy::print_stdout, reason = "the one ready line is the binary's interface")]
    {
        println!("{ready}");
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
