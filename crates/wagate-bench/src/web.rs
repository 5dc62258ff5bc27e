//! `web`: web sessions on the local WhatsApp network. The `fake-whatsapp` server runs as a
//! child process, so its memory is not counted in this process's; a wagate server runs in this
//! process, pointed at it. The bench links many web sessions through wagate's API (the fake's
//! control API "scans" each QR code with its own phone number) and reports:
//!
//! - resident memory per connected web session;
//! - web → web throughput (accepted, then server ack `sent` and `delivered` from the receiving
//!   session), against the same count through sim sessions in the same run;
//! - how long the linked sessions take to be `connected` again after a graceful restart on the
//!   same data dir (no QR: the devices log in again with their stored keys).
//!
//! Only a build with the `local-whatsapp` feature reaches a local server; such a build skips
//! WhatsApp's certificate checks and is for benchmarks only.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use super::{
    bench_config, ms, send_texts, sessions as sim_sessions, status_mib, to_virtual_contacts, Client,
};

#[derive(clap::Args)]
pub(crate) struct WebArgs {
    /// Web sessions to link, each to an account of its own on the local network.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Sessions being linked at once.
    #[arg(long, default_value_t = 16)]
    link_concurrency: usize,
    /// Seconds to wait once all are connected before reading memory.
    #[arg(long, default_value_t = 10)]
    settle_secs: u64,
    /// Messages for each throughput run (web → web, then as many through sim sessions); 0
    /// skips both.
    #[arg(long, default_value_t = 2_000)]
    messages: usize,
    /// Pairs of web sessions that text each other in the throughput run; the sim run sends
    /// through twice as many sim sessions.
    #[arg(long, default_value_t = 2)]
    pairs: usize,
    /// Concurrent HTTP clients sending.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Do not restart the server at the end.
    #[arg(long)]
    no_restart: bool,
    /// The `fake-whatsapp` binary; by default the one beside this program (build it with
    /// `cargo build --release -p fake-whatsapp`).
    #[arg(long)]
    fake: Option<PathBuf>,
}

/// The `fake-whatsapp` child process; killed when dropped.
struct Network {
    child: tokio::process::Child,
    ws_url: String,
    control_url: String,
}

impl Network {
    async fn start(binary: PathBuf) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(&binary)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", std::env::var("FAKE_WHATSAPP_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let stdout = child.stdout.take().context("the fake's stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("fake-whatsapp did not print its ready line in 30 s")??
            .context("fake-whatsapp exited before it was ready")?;
        let ready: Value =
            serde_json::from_str(&ready).with_context(|| format!("the ready line {ready:?}"))?;
        let url = |key: &str| {
            ready[key].as_str().map(str::to_owned).with_context(|| format!("no {key} in {ready}"))
        };
        Ok(Self { ws_url: url("ws_url")?, control_url: url("control_url")?, child })
    }

    /// The fake's resident memory, in MiB.
    fn rss_mib(&self) -> f64 {
        self.child.id().map(|pid| status_mib(&format!("/proc/{pid}/status"), "VmRSS:")).unwrap_or(0.0)
    }
}

/// The fake beside this program (`target/release/fake-whatsapp` next to
/// `target/release/wagate-bench`).
fn fake_beside_me() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name("fake-whatsapp");
    if !path.exists() {
        bail!("no {}: build it (cargo build --release -p fake-whatsapp) or give --fake", path.display());
    }
    Ok(path)
}

/// This process's resident memory, in MiB.
fn rss_mib() -> f64 {
    super::memory_mib("VmRSS:")
}

/// A wagate server in this process whose `web` sessions reach the local network, pacing off.
async fn start_server(
    config: &wagate_server::Config,
) -> anyhow::Result<(wagate_server::Server, Arc<Client>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = wagate_server::Server::start(config.clone(), listener).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let client = Arc::new(Client { http, base: format!("http://{}", server.addr()), key: "bench".into() });
    Ok((server, client))
}

/// The phone number of web session `i`'s account.
fn phone(i: usize) -> String {
    format!("1777{:07}", i)
}

/// Creates web session `id`, connects it, and has the phone of `phone` scan its QR code
/// through the fake's control API; returns once the session is `connected`.
async fn link(
    client: &Client,
    control: &reqwest::Client,
    network: &str,
    id: &str,
    phone: &str,
) -> anyhow::Result<()> {
    let (status, body) = client.post("/v1/sessions", json!({ "id": id, "connector": "web" })).await?;
    if status != 201 {
        bail!("creating session {id}: {status} {body}");
    }
    let (status, body) = client.post(&format!("/v1/sessions/{id}/connect"), json!({})).await?;
    if status != 202 {
        bail!("connecting session {id}: {status} {body}");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut scanned = false;
    loop {
        if !scanned {
            let (status, qr) = client.get(&format!("/v1/sessions/{id}/qr")).await?;
            if status == 200 {
                let response = control
                    .post(format!("{network}/scan"))
                    .json(&json!({ "qr": qr["code"], "phone": phone }))
                    .send()
                    .await?;
                // A QR code that rotated meanwhile is refused; the next one is scanned.
                scanned = response.status().is_success();
            }
        } else if client.get(&format!("/v1/sessions/{id}")).await?.1["status"] == "connected" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("session {id} did not connect in 120 s (scanned: {scanned})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many of the `web` sessions are `connected`.
async fn connected_web_sessions(client: &Client) -> anyhow::Result<usize> {
    let (status, body) = client.get("/v1/sessions").await?;
    if status != 200 {
        bail!("listing sessions: {status} {body}");
    }
    Ok(body["data"]
        .as_array()
        .map(|sessions| {
            sessions.iter().filter(|s| s["connector"] == "web" && s["status"] == "connected").count()
        })
        .unwrap_or(0))
}

/// When (after `started`) `total` messages had reached `sent`, and `delivered`, following the
/// event log after `after`.
async fn follow(
    client: &Client,
    after: Option<String>,
    total: usize,
    started: Instant,
) -> anyhow::Result<(Duration, Duration)> {
    let (mut sent, mut delivered) = (0, 0);
    let (mut sent_at, mut delivered_at) = (None, None);
    let mut cursor = after;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let query = cursor.as_ref().map(|c| format!("&after={c}")).unwrap_or_default();
        let (_, page) = client.get(&format!("/v1/events?types=message.status&limit=1000{query}")).await?;
        let events = page["data"].as_array().cloned().unwrap_or_default();
        for event in &events {
            match event["data"]["status"].as_str() {
                Some("sent") => sent += 1,
                Some("delivered") => delivered += 1,
                Some("failed") => bail!("a message failed: {}", event["data"]),
                _ => {}
            }
        }
        if sent >= total && sent_at.is_none() {
            sent_at = Some(started.elapsed());
        }
        if delivered >= total && delivered_at.is_none() {
            delivered_at = Some(started.elapsed());
        }
        if let (Some(sent_at), Some(delivered_at)) = (sent_at, delivered_at) {
            return Ok((sent_at, delivered_at));
        }
        if let Some(next) = page["next_after"].as_str() {
            cursor = Some(next.to_owned());
        }
        if events.is_empty() {
            if Instant::now() > deadline {
                bail!("after 600 s only {sent} of {total} messages were sent and {delivered} delivered");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One throughput run's figures.
struct Throughput {
    accepted: f64,
    sent: f64,
    delivered: f64,
}

/// Sends `messages` texts where `route` says, and follows them to `delivered`.
async fn throughput(
    label: &str,
    client: &Arc<Client>,
    route: super::Route,
    messages: usize,
    concurrency: usize,
) -> anyhow::Result<Throughput> {
    let after = super::last_event(client).await?;
    let started = Instant::now();
    let (latencies, accepted_in) = send_texts(client, route, messages, concurrency, None).await?;
    let (sent_in, delivered_in) = follow(client, after, messages, started).await?;
    let rate = |d: Duration| messages as f64 / d.as_secs_f64();
    println!(
        "{label}: accepted {:>6.0} msg/s (p50 {:.1} ms, p99 {:.1} ms); all sent (server ack) after {:.2} s: {:>6.0} msg/s; all delivered after {:.2} s: {:>6.0} msg/s",
        rate(accepted_in),
        ms(latencies.value_at_quantile(0.5)),
        ms(latencies.value_at_quantile(0.99)),
        sent_in.as_secs_f64(),
        rate(sent_in),
        delivered_in.as_secs_f64(),
        rate(delivered_in),
    );
    Ok(Throughput { accepted: rate(accepted_in), sent: rate(sent_in), delivered: rate(delivered_in) })
}

pub(crate) async fn run(args: WebArgs) -> anyhow::Result<()> {
    if !wagate_connect::web::SKIPS_CERTIFICATE_CHECKS {
        bail!(
            "this build cannot reach a local WhatsApp network: build with \
             `cargo build --release -p wagate-bench --features local-whatsapp -p fake-whatsapp`"
        );
    }
    if args.messages > 0 && args.sessions < 2 * args.pairs {
        bail!("--pairs {} needs at least {} sessions", args.pairs, 2 * args.pairs);
    }
    let network = Network::start(match args.fake {
        Some(path) => path,
        None => fake_beside_me()?,
    })
    .await?;
    let dir = tempfile::TempDir::new()?;
    let mut config = bench_config(dir.path());
    config.connectors.web.ws_url = network.ws_url.clone();
    // A fixed version: nothing is fetched from web.whatsapp.com.
    config.connectors.web.client_version = Some("2.3000.1023456789".into());
    // No pacing: the figures are wagate's and the network's, not a human's rhythm.
    config.pacing.web = config.pacing.sim.clone();
    let (server, client) = start_server(&config).await?;
    println!(
        "web sessions on the local WhatsApp network: {} sessions linked {} at a time; {} messages \
         through {} web pairs and through {} sim sessions, {} clients; restart: {}",
        args.sessions,
        args.link_concurrency,
        args.messages,
        args.pairs,
        2 * args.pairs,
        args.concurrency,
        if args.no_restart { "no" } else { "yes" }
    );

    // Memory: before linking, and once every session is connected and has settled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, fake_before) = (rss_mib(), network.rss_mib());
    let ids: Vec<String> = (0..args.sessions).map(|i| format!("web-{i}")).collect();
    let control = reqwest::Client::new();
    let started = Instant::now();
    futures_util::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let (client, control, network) = (&client, &control, &network.control_url);
            async move {
                link(client, control, network, id, &phone(i)).await.with_context(|| format!("linking {id}"))
            }
        })
        .buffer_unordered(args.link_concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    let linked_in = started.elapsed();
    let connected_rss = rss_mib();
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let connected = connected_web_sessions(&client).await?;
    if connected != args.sessions {
        bail!("{connected} of {} web sessions are connected after settling", args.sessions);
    }
    let (after, fake_after) = (rss_mib(), network.rss_mib());
    let per = |before: f64, after: f64| (after - before) * 1024.0 / args.sessions as f64;
    println!(
        "linked {} web sessions in {:.1} s ({:.1} sessions/s)",
        args.sessions,
        linked_in.as_secs_f64(),
        args.sessions as f64 / linked_in.as_secs_f64()
    );
    println!(
        "wagate RSS: {before:.1} MiB before linking, {connected_rss:.1} MiB when all were connected, \
         {after:.1} MiB {} s later: {:.0} KiB per connected session",
        args.settle_secs,
        per(before, after)
    );
    println!(
        "fake-whatsapp RSS (its own process, for information): {fake_before:.1} → {fake_after:.1} MiB \
         ({:.0} KiB per account)",
        per(fake_before, fake_after)
    );

    let mut server = server;
    let mut client = client;
    if args.messages > 0 {
        let web_sessions = ids[..2 * args.pairs].to_vec();
        // Session 2k and 2k+1 text each other.
        let web_route: super::Route = Arc::new(move |n| {
            let from = n % web_sessions.len();
            (web_sessions[from].clone(), phone(from ^ 1))
        });
        let web = throughput("web → web", &client, web_route, args.messages, args.concurrency).await?;
        let sims = sim_sessions(&client, 2 * args.pairs, true).await?;
        let sim = throughput(
            "sim → contacts",
            &client,
            to_virtual_contacts(&sims),
            args.messages,
            args.concurrency,
        )
        .await?;
        println!(
            "web / sim: accepted {:.2}, sent {:.2}, delivered {:.2}",
            web.accepted / sim.accepted,
            web.sent / sim.sent,
            web.delivered / sim.delivered
        );
    }

    if !args.no_restart {
        let before_restart = super::last_event(&client).await?;
        let stopping = Instant::now();
        server.shutdown().await?;
        let stopped_in = stopping.elapsed();
        let starting = Instant::now();
        (server, client) = start_server(&config).await?;
        let started_in = starting.elapsed();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let connected = connected_web_sessions(&client).await?;
            if connected == args.sessions {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "after a restart only {connected} of {} web sessions connected in 600 s",
                    args.sessions
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let all_in = starting.elapsed();
        let query = before_restart.map(|c| format!("&after={c}")).unwrap_or_default();
        let (_, qr) = client.get(&format!("/v1/events?types=session.qr&limit=1000{query}")).await?;
        let qr_codes = qr["data"].as_array().map_or(0, Vec::len);
        println!(
            "restart: shut down in {:.2} s; the new server answered after {:.2} s; all {} web sessions \
             connected again {:.2} s after it started ({:.0} sessions/s); QR codes shown since: {}",
            stopped_in.as_secs_f64(),
            started_in.as_secs_f64(),
            args.sessions,
            all_in.as_secs_f64(),
            args.sessions as f64 / all_in.as_secs_f64(),
            qr_codes
        );
        println!("wagate RSS after the restart, all connected: {:.1} MiB", rss_mib());
    }
    server.shutdown().await?;
    drop(network);
    Ok(())
}
