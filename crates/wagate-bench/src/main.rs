//! wagate-bench: load benchmarks that drive wagate's HTTP API like a client would.
//!
//! `send`: links sim sessions, sends text messages to virtual contacts from many concurrent
//! clients, and reports accepted messages/s, accept latency (p50/p99) and end-to-end
//! (accepted → read) messages/s. By default it starts a server in this process on a temporary
//! data dir; `--url` and `--key` point it at a running one instead.
//!
//! `webhooks`: registers a webhook to a receiver in this process, sends messages as `send`
//! does, and reports webhook deliveries/s and the delay from an event's creation to its
//! arrival at the receiver (p50/p99); then replays the whole run to the webhook and reports
//! how fast a backlog drains.
//!
//! `campaign`: creates one campaign to many virtual contacts (100,000 by default) through a
//! sim session without pacing, and reports how long creating it took and how many messages
//! a second reached `read`.
//!
//! `media`: uploads one large document (100 MiB by default) as a stream, sends it between
//! two sim sessions and downloads what arrived, and reports the process's peak memory (the
//! server runs in this process) before and after: streaming keeps it flat.
//!
//! `web-idle`: builds many web sessions (device keys loaded from the store, client ready)
//! without connecting them, and reports resident memory per session.
//!
//! `scale`: fills a database with millions of messages and events through the store, then
//! reports a history page, an event page, a campaign's counts, a claim behind messages
//! scheduled ahead, a claim with none due and a batch of receipts (p50/p99) and the database's
//! size per message (`scale.rs`).
//!
//! `web` (feature `local-whatsapp`): links many web sessions on the local WhatsApp network
//! (`fake-whatsapp`, run as a child process) and reports memory per connected session, web → web
//! throughput against sim in the same run, and the time to reconnect them all after a restart.

// The report on stdout is what this program is for.
#![allow(clippy::print_stdout)]

mod scale;
mod web;
mod web_idle;
mod writes;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
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
    /// Deliver the events of a send run to a local webhook receiver.
    Webhooks(WebhookArgs),
    /// Create one large campaign and time it until every message is read.
    Campaign(CampaignArgs),
    /// Upload, send and download one large document; report peak memory.
    Media(MediaArgs),
    /// Build many web sessions without connecting them; report memory per session.
    WebIdle(web_idle::WebIdleArgs),
    /// Link web sessions on a local WhatsApp network (`fake-whatsapp`); report memory per
    /// connected session, web → web throughput against sim, and reconnection after a restart.
    /// Needs the `local-whatsapp` feature.
    Web(web::WebArgs),
    /// Fill a database with many messages and events through the store; report page, count,
    /// claim and receipt latencies and the size per message.
    Scale(scale::ScaleArgs),
}

#[derive(clap::Args)]
struct MediaArgs {
    /// Size of the document in MiB.
    #[arg(long, default_value_t = 100)]
    mib: u64,
}

#[derive(clap::Args)]
struct CampaignArgs {
    /// Recipients of the campaign.
    #[arg(long, default_value_t = 100_000)]
    recipients: usize,
    /// A running wagate to benchmark (its sim connector must be enabled).
    #[arg(long, requires = "key")]
    url: Option<String>,
    /// Its admin API key.
    #[arg(long)]
    key: Option<String>,
}

#[derive(clap::Args)]
struct WebhookArgs {
    /// Messages to send; each makes five events (queued, sending, sent, delivered, read).
    #[arg(long, default_value_t = 4_000)]
    messages: usize,
    /// Concurrent HTTP clients sending.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Sim sessions the messages are spread over.
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Deliveries to the webhook in flight at once (`webhooks.max_in_flight`).
    #[arg(long, default_value = "16")]
    max_in_flight: std::num::NonZeroU32,
    /// Messages per second to send at (as fast as possible when absent), to measure the
    /// delay when the deliverer keeps up.
    #[arg(long)]
    rate: Option<f64>,
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
    /// Send through an API key of the `default` organization (scope `messages:send`) instead
    /// of the admin key: what key lookup, scope checks and rate limiting cost on the send
    /// path. A server started by the bench gets limits no run reaches; one at `--url` keeps
    /// its own.
    #[arg(long)]
    org_key: bool,
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
    // The in-process server's logs, when asked for (`RUST_LOG=wagate_server=debug`).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Send(args) => send(args).await,
            Command::Webhooks(args) => webhooks(args).await,
            Command::Campaign(args) => campaign(args).await,
            Command::Media(args) => media(args).await,
            Command::WebIdle(args) => web_idle::run(args).await,
            Command::Web(args) => web::run(args).await,
            Command::Scale(args) => scale::run(args).await,
        }
    })
}

/// A server to benchmark: the one at `url`, or one started in this process.
struct Target {
    client: Arc<Client>,
    server: Option<wagate_server::Server>,
    _dir: Option<tempfile::TempDir>,
}

async fn target(
    url: Option<&str>,
    key: Option<&str>,
    concurrency: usize,
    tweak: impl FnOnce(&mut wagate_server::Config),
) -> anyhow::Result<Target> {
    let (dir, server, base, key) = match (url, key) {
        (Some(url), Some(key)) => (None, None, url.trim_end_matches('/').to_owned(), key.to_owned()),
        _ => {
            let dir = tempfile::TempDir::new()?;
            let mut config = bench_config(dir.path());
            tweak(&mut config);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let server = wagate_server::Server::start(config, listener).await?;
            let base = format!("http://{}", server.addr());
            (Some(dir), Some(server), base, "bench".to_owned())
        }
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    Ok(Target { client: Arc::new(Client { http, base, key }), server, _dir: dir })
}

/// The configuration of a server started in this process: its data in `dir` (SQLite), or the
/// PostgreSQL database `WAGATE_DATABASE_URL` names; admin key `bench`; sim delays 0.
fn bench_config(dir: &std::path::Path) -> wagate_server::Config {
    let mut config = wagate_server::Config {
        data_dir: dir.to_owned(),
        // SQLite in the temp dir, or the PostgreSQL database this names.
        database_url: std::env::var("WAGATE_DATABASE_URL").ok().map(Into::into),
        admin_key: Some("bench".into()),
        ..Default::default()
    };
    config.connectors.sim.delivery_delay_ms = 0;
    config.connectors.sim.read_delay_ms = 0;
    config
}

/// Creates `count` sim sessions for this run, linked unless `link` is false.
async fn sessions(client: &Client, count: usize, link: bool) -> anyhow::Result<Vec<String>> {
    let run = format!("{:x}", std::process::id());
    let sessions: Vec<String> = (0..count).map(|i| format!("bench-{run}-{i}")).collect();
    for (i, id) in sessions.iter().enumerate() {
        if link {
            let phone = format!("1555{:07}", 1_000_000 + i);
            client.link(id, &phone).await.with_context(|| format!("linking {id}"))?;
        } else {
            let (status, body) = client.post("/v1/sessions", json!({ "id": id, "connector": "sim" })).await?;
            if status != 201 {
                bail!("creating session {id}: {status} {body}");
            }
        }
    }
    if link {
        settle(client, &sessions).await?;
    }
    Ok(sessions)
}

/// On a cluster, waits until the new sessions have spread over the nodes (the same counts
/// twice in a row, a second apart) and are connected again, so that no session moves
/// mid-run. One node settles at once.
async fn settle(client: &Client, sessions: &[String]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last: Option<Vec<u64>> = None;
    loop {
        let (_, nodes) = client.get("/v1/cluster/nodes").await?;
        let counts: Vec<u64> = nodes["data"]
            .as_array()
            .map(|nodes| {
                nodes
                    .iter()
                    .filter(|n| n["state"] == "active")
                    .filter_map(|n| n["sessions"].as_u64())
                    .collect()
            })
            .unwrap_or_default();
        let balanced = counts.iter().max().zip(counts.iter().min()).is_some_and(|(max, min)| max - min <= 1);
        if counts.len() <= 1 || (balanced && last.as_ref() == Some(&counts)) {
            break;
        }
        if Instant::now() > deadline {
            bail!("sessions did not settle over the nodes: {counts:?}");
        }
        last = Some(counts);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for id in sessions {
        while client.get(&format!("/v1/sessions/{id}")).await?.1["status"] != "connected" {
            if Instant::now() > deadline {
                bail!("session {id} did not connect again");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Which session sends message `n`, and to whom.
type Route = Arc<dyn Fn(usize) -> (String, String) + Send + Sync>;

/// Message `n` goes from one of `sessions` in turn to one of 9,999 virtual contacts.
fn to_virtual_contacts(sessions: &[String]) -> Route {
    let sessions = sessions.to_vec();
    Arc::new(move |n| (sessions[n % sessions.len()].clone(), format!("1666{:07}", 1 + n % 9_999)))
}

/// Sends `total` texts, each where `route` says, from `concurrency` clients, at most `rate` a
/// second when given; answers the accept latencies (µs) and how long accepting took.
async fn send_texts(
    client: &Arc<Client>,
    route: Route,
    total: usize,
    concurrency: usize,
    rate: Option<f64>,
) -> anyhow::Result<(Histogram<u64>, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = Arc::clone(client);
        let next = Arc::clone(&next);
        let route = Arc::clone(&route);
        workers.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new(3).expect("histogram");
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                if let Some(rate) = rate {
                    tokio::time::sleep_until((started + Duration::from_secs_f64(n as f64 / rate)).into())
                        .await;
                }
                let (session, to) = route(n);
                let body = json!({ "to": to, "type": "text", "text": { "body": format!("bench {n}") } });
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
    Ok((latencies, started.elapsed()))
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    let target = target(args.url.as_deref(), args.key.as_deref(), args.concurrency, |config| {
        let unreached = std::num::NonZeroU32::new(1_000_000).expect("not zero");
        config.rate_limits.key_per_second = unreached;
        config.rate_limits.key_burst = unreached;
        config.rate_limits.org_per_second = unreached;
        config.rate_limits.org_burst = unreached;
    })
    .await?;
    let client = &target.client;
    let sessions = sessions(client, args.sessions, !args.accept_only).await?;
    let sender = if args.org_key { Arc::new(org_key(client).await?) } else { client.clone() };
    let after = last_event(client).await?;
    let database = writes::database();
    let writes_before = match &database {
        Some(url) => Some(writes::settled(url).await?),
        None => None,
    };

    println!(
        "sending {} messages from {} concurrent clients through {} sim sessions",
        args.messages, args.concurrency, args.sessions
    );
    let started = Instant::now();
    let (latencies, accepted_in) =
        send_texts(&sender, to_virtual_contacts(&sessions), args.messages, args.concurrency, None).await?;
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
        if let (Some(url), Some(before)) = (&database, &writes_before) {
            writes::report(before, &writes::settled(url).await?, args.messages);
        }
        return finish(target.server).await;
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
    if let (Some(url), Some(before)) = (&database, &writes_before) {
        writes::report(before, &writes::settled(url).await?, args.messages);
    }
    finish(target.server).await
}

/// A client of the same server with a new API key of the `default` organization that may send.
async fn org_key(admin: &Client) -> anyhow::Result<Client> {
    let (status, created) =
        admin.post("/v1/keys", json!({ "name": "bench", "scopes": ["messages:send"] })).await?;
    ensure!(status == 201, "creating an API key: {status} {created}");
    let secret = created["secret"].as_str().context("no secret in the new key")?.to_owned();
    Ok(Client { http: admin.http.clone(), base: admin.base.clone(), key: secret })
}

/// What the bench's webhook receiver has seen.
#[derive(Default)]
struct Received {
    ids: std::collections::HashSet<String>,
    /// Event created → received, in µs, for first arrivals.
    delays: Option<Histogram<u64>>,
    last_at: Option<Instant>,
}

async fn receive(
    axum::extract::State(received): axum::extract::State<Arc<parking_lot::Mutex<Received>>>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let now = chrono::Utc::now();
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let created = event["created_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let mut received = received.lock();
    if received.ids.insert(event["id"].as_str().unwrap_or_default().to_owned()) {
        if let Some(created) = created {
            let delay = (now - created.to_utc()).num_microseconds().unwrap_or(0).max(0) as u64;
            let delays = received.delays.get_or_insert_with(|| Histogram::new(3).expect("histogram"));
            let _ = delays.record(delay);
        }
    }
    received.last_at = Some(Instant::now());
    axum::http::StatusCode::NO_CONTENT
}

/// Waits until the receiver has `count` distinct events; answers when the last arrived.
async fn received_all(received: &parking_lot::Mutex<Received>, count: usize) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        {
            let received = received.lock();
            if received.ids.len() >= count {
                return Ok(received.last_at.unwrap_or_else(Instant::now));
            }
            if Instant::now() > deadline {
                bail!("only {} of {count} events arrived", received.ids.len());
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn webhooks(args: WebhookArgs) -> anyhow::Result<()> {
    let target = target(None, None, args.concurrency, |config| {
        config.webhooks.allow_private_targets = true;
        config.webhooks.max_in_flight = args.max_in_flight;
    })
    .await?;
    let client = &target.client;
    let received = Arc::new(parking_lot::Mutex::new(Received::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new().fallback(receive).with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sessions = sessions(client, args.sessions, true).await?;
    let first_event = last_event(client).await?;
    let (status, body) =
        client.post("/v1/webhooks", json!({ "url": receiver_url, "events": ["message.*"] })).await?;
    if status != 201 {
        bail!("creating the webhook: {status} {body}");
    }
    let webhook = body["id"].as_str().unwrap_or_default().to_owned();
    let expected = args.messages * 5;
    println!(
        "sending {} messages ({} events) from {} clients through {} sim sessions to one webhook",
        args.messages, expected, args.concurrency, args.sessions
    );
    let started = Instant::now();
    send_texts(client, to_virtual_contacts(&sessions), args.messages, args.concurrency, args.rate).await?;
    let last_arrival = received_all(&received, expected).await?;
    let took = last_arrival - started;
    {
        let received = received.lock();
        let delays = received.delays.as_ref().context("no delivery arrived")?;
        println!(
            "live:    {:>9.0} deliveries/s ({} in {:.2} s); event → receiver p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            expected as f64 / took.as_secs_f64(),
            expected,
            took.as_secs_f64(),
            ms(delays.value_at_quantile(0.5)),
            ms(delays.value_at_quantile(0.99)),
            ms(delays.max())
        );
    }

    // Replay everything: a backlog that is all due at once.
    let since = match first_event {
        Some(id) => id,
        None => "evt_0000000000000000".to_owned(),
    };
    received.lock().ids.clear();
    let started = Instant::now();
    let (status, body) =
        client.post(&format!("/v1/webhooks/{webhook}/replay"), json!({ "since": since })).await?;
    if status != 202 {
        bail!("replay: {status} {body}");
    }
    let queued = body["queued"].as_u64().unwrap_or(0) as usize;
    let last_arrival = received_all(&received, queued).await?;
    let took = last_arrival - started;
    println!(
        "backlog: {:>9.0} deliveries/s ({} replayed in {:.2} s)",
        queued as f64 / took.as_secs_f64(),
        queued,
        took.as_secs_f64()
    );
    finish(target.server).await
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

async fn campaign(args: CampaignArgs) -> anyhow::Result<()> {
    let target = target(args.url.as_deref(), args.key.as_deref(), 4, |_| {}).await?;
    let client = &target.client;
    let session = sessions(client, 1, true).await?.remove(0);
    let recipients: Vec<Value> = (0..args.recipients)
        .map(|i| json!({ "to": format!("1778{i:06}1"), "params": { "name": format!("N{i}") } }))
        .collect();
    let body = json!({ "name": "bench", "content": { "type": "text", "text": { "body": "Hi {{name}}, this is a benchmark" } }, "recipients": recipients });
    let bytes = body.to_string().len();
    println!("creating a campaign of {} recipients ({:.1} MB of JSON)", args.recipients, bytes as f64 / 1e6);
    let started = Instant::now();
    let (status, created) = client.post(&format!("/v1/sessions/{session}/campaigns"), body).await?;
    let creation = started.elapsed();
    if status != 201 {
        bail!("creating the campaign answered {status}: {created}");
    }
    println!("created in {:.2} s", creation.as_secs_f64());
    let path = format!("/v1/sessions/{session}/campaigns/{}", created["id"].as_str().unwrap_or_default());
    let total = created["total"].as_u64().unwrap_or_default();
    let mut all_sent = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (_, progress) = client.get(&path).await?;
        let count = |status: &str| progress["counts"][status].as_u64().unwrap_or_default();
        if all_sent.is_none() && progress["status"] == "completed" {
            all_sent = Some(started.elapsed() - creation);
        }
        if count("read") + count("failed") >= total {
            let elapsed = started.elapsed() - creation;
            let sent = all_sent.unwrap_or(elapsed);
            println!(
                "all sent after {:.2} s: {:.0} messages/s",
                sent.as_secs_f64(),
                total as f64 / sent.as_secs_f64()
            );
            println!(
                "all read after {:.2} s: {:.0} messages/s to read ({} failed)",
                elapsed.as_secs_f64(),
                total as f64 / elapsed.as_secs_f64(),
                count("failed")
            );
            break;
        }
    }
    if let Some(server) = target.server {
        server.shutdown().await?;
    }
    Ok(())
}

/// The process's peak resident memory so far, in MiB.
fn peak_rss_mib() -> f64 {
    memory_mib("VmHWM:")
}

/// One of the process's memory figures (`VmHWM:`, `VmRSS:`) in MiB.
fn memory_mib(field: &str) -> f64 {
    status_mib("/proc/self/status", field)
}

/// A memory figure of the process whose `/proc/<pid>/status` is at `path`, in MiB.
fn status_mib(path: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

async fn media(args: MediaArgs) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use sha2::Digest;

    let target = target(None, None, 4, |_| {}).await?;
    let client = &target.client;
    let sessions = sessions(client, 2, true).await?;
    let before = peak_rss_mib();
    println!("peak RSS with the server up and two sessions linked: {before:.1} MiB");

    // The document, generated as it is sent: 1 MiB chunks of a repeating pattern.
    let chunks = args.mib;
    let mut sent_hash = sha2::Sha256::new();
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    for _ in 0..chunks {
        sent_hash.update(&chunk);
    }
    let sent_hash = sent_hash.finalize();
    let body = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk.clone()))),
    );
    let started = Instant::now();
    let uploaded = client
        .http
        .post(format!("{}/v1/media?filename=big.pdf", client.base))
        .bearer_auth(&client.key)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    if uploaded.status() != 201 {
        bail!("upload answered {}: {}", uploaded.status(), uploaded.text().await?);
    }
    let media: Value = uploaded.json().await?;
    println!("uploaded {} MiB in {:.2} s", args.mib, started.elapsed().as_secs_f64());

    let body = json!({ "to": format!("1555{:07}", 1_000_001), "type": "document", "document": { "media_id": media["id"], "filename": "big.pdf" } });
    let (status, sent) =
        client.post(&format!("/v1/sessions/{}/messages?wait=true", sessions[0]), body).await?;
    if status != 200 {
        bail!("send answered {status}: {sent}");
    }
    let received = loop {
        let (_, page) =
            client.get(&format!("/v1/sessions/{}/messages?direction=in&limit=1", sessions[1])).await?;
        if let Some(message) = page["data"].as_array().and_then(|m| m.first()).cloned() {
            break message;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let id = received["document"]["id"].as_str().unwrap_or_default().to_owned();
    let download =
        client.http.get(format!("{}/v1/media/{id}", client.base)).bearer_auth(&client.key).send().await?;
    let mut stream = download.bytes_stream();
    let mut got_hash = sha2::Sha256::new();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        got += chunk.len() as u64;
        got_hash.update(&chunk);
    }
    if got_hash.finalize() != sent_hash {
        bail!("the downloaded document differs from the uploaded one");
    }
    let after = peak_rss_mib();
    println!("sent and downloaded {got} bytes, identical (sha256)");
    println!("peak RSS after: {after:.1} MiB (+{:.1} MiB for a {} MiB document)", after - before, args.mib);
    if let Some(server) = target.server {
        server.shutdown().await?;
    }
    Ok(())
}
