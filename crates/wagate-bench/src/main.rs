//! wagate-bench: load benchmarks that drive wagate's HTTP API like a client would.
//!
//! `send`: links sim sessions, sends text messages to virtual contacts from many concurrent
//! clients, and reports accepted messages/s, accept latency (p50/p99) and end-to-end
//! (accepted → read) messages/s. By default it starts a server in this process on a temporary
//! data dir; `--url` and `--key` point it at a running one instead.

// The report on stdout is what this program is for.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "wagate-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send text messages through sim sessions.
    Send(SendArgs),
}

#[derive(clap::Args)]
struct SendArgs {
    /// Messages to send in all.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Sim sessions the messages are spread over.
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Only accept: the sessions are created but not linked, so nothing is sent and the
    /// figure is what the write path alone sustains.
    #[arg(long)]
    accept_only: bool,
    /// A running wagate to benchmark (its sim connector must be enabled).
    #[arg(long, requires = "key")]
    url: Option<String>,
    /// Its admin API key.
    #[arg(long)]
    key: Option<String>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? }))
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Creates a sim session and links it by scanning its QR code.
    async fn link(&self, id: &str, phone: &str) -> anyhow::Result<()> {
        let (status, body) = self.post("/v1/sessions", json!({ "id": id, "connector": "sim" })).await?;
        if status != 201 && status != 409 {
            bail!("creating session {id}: {status} {body}");
        }
        self.post(&format!("/v1/sessions/{id}/connect"), json!({})).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, session) = self.get(&format!("/v1/sessions/{id}")).await?;
            if session["status"] == "connected" {
                return Ok(());
            }
            let (status, qr) = self.get(&format!("/v1/sessions/{id}/qr")).await?;
            if status == 200 {
                self.post("/v1/sim/scan", json!({ "code": qr["code"], "phone": phone })).await?;
            }
            if Instant::now() > deadline {
                bail!("session {id} did not connect");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Send(args) => send(args).await,
        }
    })
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    // Keep the in-process server alive for the whole run.
    let (_dir, server, base, key) = match (&args.url, &args.key) {
        (Some(url), Some(key)) => (None, None, url.trim_end_matches('/').to_owned(), key.clone()),
        _ => {
            let dir = tempfile::TempDir::new()?;
            let mut config = wagate_server::Config {
                data_dir: dir.path().to_owned(),
                admin_key: Some("bench".into()),
                ..Default::default()
            };
            config.connectors.sim.delivery_delay_ms = 0;
            config.connectors.sim.read_delay_ms = 0;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let server = wagate_server::Server::start(config, listener).await?;
            let base = format!("http://{}", server.addr());
            (Some(dir), Some(server), base, "bench".to_owned())
        }
    };
    let client = Arc::new(Client {
        http: reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?,
        base,
        key,
    });
    let run = format!("{:x}", std::process::id());
    let sessions: Vec<String> = (0..args.sessions).map(|i| format!("bench-{run}-{i}")).collect();
    for (i, id) in sessions.iter().enumerate() {
        if args.accept_only {
            let (status, body) = client.post("/v1/sessions", json!({ "id": id, "connector": "sim" })).await?;
            if status != 201 {
                bail!("creating session {id}: {status} {body}");
            }
        } else {
            let phone = format!("1555{:07}", 1_000_000 + i);
            client.link(id, &phone).await.with_context(|| format!("linking {id}"))?;
        }
    }
    let after = last_event(&client).await?;

    println!(
        "sending {} messages from {} concurrent clients through {} sim sessions",
        args.messages, args.concurrency, args.sessions
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let client = Arc::clone(&client);
        let next = Arc::clone(&next);
        let sessions = sessions.clone();
        let total = args.messages;
        workers.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new(3).expect("histogram");
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let session = &sessions[n % sessions.len()];
                let body = json!({ "to": format!("1666{:07}", 1 + n % 9_999), "type": "text", "text": { "body": format!("bench {n}") } });
                let sent = Instant::now();
                let (status, reply) = client.post(&format!("/v1/sessions/{session}/messages"), body).await?;
                if status != 202 {
                    bail!("send answered {status}: {reply}");
                }
                latencies.record(sent.elapsed().as_micros() as u64)?;
            }
        }));
    }
    let mut latencies = Histogram::<u64>::new(3)?;
    for worker in workers {
        latencies.add(worker.await??)?;
    }
    let accepted_in = started.elapsed();

    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "accepted:   {:>9.0} messages/s ({} in {:.2} s)",
        args.messages as f64 / accepted_in.as_secs_f64(),
        args.messages,
        accepted_in.as_secs_f64()
    );
    println!(
        "accept latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(latencies.value_at_quantile(0.5)),
        ms(latencies.value_at_quantile(0.99)),
        ms(latencies.max())
    );
    if args.accept_only {
        return finish(server).await;
    }

    // Follow the event log until every message is read.
    let mut read = 0;
    let mut cursor = after;
    let deadline = Instant::now() + Duration::from_secs(600);
    while read < args.messages {
        let query = cursor.as_ref().map(|c| format!("&after={c}")).unwrap_or_default();
        let (_, page) = client.get(&format!("/v1/events?types=message.status&limit=1000{query}")).await?;
        let events = page["data"].as_array().cloned().unwrap_or_default();
        read += events.iter().filter(|e| e["data"]["status"] == "read").count();
        let failed: Vec<&Value> = events.iter().filter(|e| e["data"]["status"] == "failed").collect();
        if let Some(failure) = failed.first() {
            bail!("{} messages failed, the first: {}", failed.len(), failure["data"]);
        }
        if let Some(next) = page["next_after"].as_str() {
            cursor = Some(next.to_owned());
        }
        if events.is_empty() {
            if Instant::now() > deadline {
                bail!("only {read} of {} messages were read", args.messages);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let read_in = started.elapsed();
    println!(
        "end to end: {:>9.0} messages/s (accepted → read, all {} read after {:.2} s)",
        args.messages as f64 / read_in.as_secs_f64(),
        args.messages,
        read_in.as_secs_f64()
    );
    finish(server).await
}

async fn finish(server: Option<wagate_server::Server>) -> anyhow::Result<()> {
    if let Some(server) = server {
        server.shutdown().await?;
    }
    Ok(())
}

/// The newest event id, so the run only counts its own events.
async fn last_event(client: &Client) -> anyhow::Result<Option<String>> {
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map(|c| format!("&after={c}")).unwrap_or_default();
        let (_, page) = client.get(&format!("/v1/events?limit=1000{query}")).await?;
        if page["data"].as_array().is_none_or(|d| d.is_empty()) {
            return Ok(cursor);
        }
        cursor = page["next_after"].as_str().map(str::to_owned);
    }
}
