//! `scale`: the store at scale. Fills a database with `--messages` messages (10 million by
//! default) and about five events each, through the store's own API in large batches (accept,
//! claim, then `sent`, `delivered`, `read`: the same calls the engine makes, so the rows have
//! whatever shape the store gives them), one in ten of them in a campaign. Then starts a server
//! on that database and measures, with the data in place: a session's history page and one
//! message, an event page at a random offset, a campaign's counts (over HTTP, p50/p99), a
//! claim behind messages scheduled ahead, a claim with none due and a batch of receipts by
//! WhatsApp id (through the store), and the database's size per message.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use rand::Rng;
use wagate_core::{
    CampaignId, ConnectorKind, Jid, MessageContent, MessageId, MessageStatus, OrgId, SessionId, TextContent,
};
use wagate_store::{
    ClaimRequest, Keyring, MasterKey, MessageRef, NewCampaign, NewOutbound, NewSession, PgStore, SqliteStore,
    StatusUpdate, Store,
};

use crate::{ms, Client};

#[derive(clap::Args)]
pub(crate) struct ScaleArgs {
    /// Messages to fill the database with (each makes about five events).
    #[arg(long, default_value_t = 10_000_000)]
    messages: usize,
    /// Messages per store call while filling.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Sessions filling at once (each fills its own sim session).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Requests per latency measurement.
    #[arg(long, default_value_t = 1_000)]
    samples: usize,
}

/// A campaign holds one message in this many.
const CAMPAIGN_SHARE: usize = 10;
/// The largest campaign (the API's default `campaigns.max_recipients`).
const CAMPAIGN_MAX: usize = 100_000;
/// Messages a history page and an event page hold.
const PAGE: u32 = 50;
/// Messages a session claims at once (`engine.send_batch`).
const CLAIM: u32 = 64;

fn session(name: &str) -> SessionId {
    SessionId::parse(name).expect("a valid session id")
}

fn text(body: String) -> MessageContent {
    MessageContent::Text { text: TextContent { body } }
}

fn recipient(n: usize) -> Jid {
    Jid::parse_recipient(&format!("1666{:07}", 1 + n % 9_999)).expect("a valid phone number")
}

fn now() -> wagate_core::Timestamp {
    chrono::Utc::now()
}

async fn open(url: &str, keyring: Keyring) -> anyhow::Result<Arc<dyn Store>> {
    Ok(if url.starts_with("postgres") {
        Arc::new(PgStore::open(url, keyring).await?)
    } else {
        Arc::new(SqliteStore::open(url, keyring).await?)
    })
}

/// Creates a sim session and takes its lease, as the node that runs it would.
async fn new_session(store: &dyn Store, id: &SessionId) -> anyhow::Result<i64> {
    let new = NewSession {
        id: id.clone(),
        org_id: OrgId::default_org(),
        connector: ConnectorKind::Sim,
        name: None,
        config: serde_json::json!({}),
        metadata: serde_json::json!({}),
    };
    store.create_session(new, now()).await?;
    let until = now() + chrono::Duration::days(365);
    let taken = store.acquire_sessions("bench-scale", now(), until, 1, false, Some(id)).await?;
    Ok(taken.first().context("the session's lease")?.1.token)
}

/// Claims up to `limit` of a session's queued messages and takes each through `sent`,
/// `delivered` and `read`; answers the ids claimed.
async fn send_through(
    store: &dyn Store,
    id: &SessionId,
    lease: i64,
    limit: usize,
    first_wa: usize,
) -> anyhow::Result<Vec<MessageId>> {
    let request =
        ClaimRequest { session_id: id.clone(), lease, limit: u32::try_from(limit)?, defer: Vec::new() };
    let until = now() + chrono::Duration::minutes(10);
    let claim = store.claim_outbound(vec![request], now(), until).await?.pop().context("a claim")?;
    let ids: Vec<MessageId> = claim.messages.into_iter().map(|c| c.message.id).collect();
    for status in [MessageStatus::Sent, MessageStatus::Delivered, MessageStatus::Read] {
        let updates = ids
            .iter()
            .enumerate()
            .map(|(i, message)| StatusUpdate {
                message: MessageRef::Id(message.clone()),
                status,
                reason: None,
                wa_id: (status == MessageStatus::Sent).then(|| format!("wa-{id}-{}", first_wa + i)),
                retry_at: None,
            })
            .collect();
        for result in store.apply_statuses(updates, now()).await? {
            result?;
        }
    }
    // PostgreSQL numbers events once committed, as the engine has it do after each write.
    store.sequence_events(now()).await?;
    Ok(ids)
}

/// Fills one session with `count` messages, `batch` at a time; answers one id per batch.
async fn fill_session(
    store: Arc<dyn Store>,
    id: SessionId,
    count: usize,
    batch: usize,
) -> anyhow::Result<Vec<MessageId>> {
    let lease = new_session(store.as_ref(), &id).await?;
    let mut samples = Vec::with_capacity(count / batch + 1);
    let mut done = 0;
    while done < count {
        let size = batch.min(count - done);
        let messages = (done..done + size)
            .map(|n| NewOutbound {
                session_id: id.clone(),
                org_id: OrgId::default_org(),
                to: recipient(n),
                content: text(format!("message {n} of a store at scale")),
                idempotency_key: None,
                scheduled_at: None,
                context: None,
                mentions: Vec::new(),
            })
            .collect();
        for accepted in store.accept_outbound(messages, now()).await? {
            accepted?;
        }
        let ids = send_through(store.as_ref(), &id, lease, size, done).await?;
        if ids.len() != size {
            bail!("claimed {} of {size} messages of {id}", ids.len());
        }
        samples.push(ids[ids.len() / 2].clone());
        done += size;
    }
    Ok(samples)
}

/// Accepts `count` messages for one session, `batch` at a time, due now or at `scheduled_at`.
async fn enqueue(
    store: &dyn Store,
    id: &SessionId,
    count: usize,
    batch: usize,
    scheduled_at: Option<wagate_core::Timestamp>,
) -> anyhow::Result<()> {
    for chunk in (0..count).collect::<Vec<_>>().chunks(batch) {
        let messages = chunk
            .iter()
            .map(|n| NewOutbound {
                session_id: id.clone(),
                org_id: OrgId::default_org(),
                to: recipient(*n),
                content: text(format!("queued {n}")),
                idempotency_key: None,
                scheduled_at,
                context: None,
                mentions: Vec::new(),
            })
            .collect();
        for accepted in store.accept_outbound(messages, now()).await? {
            accepted?;
        }
    }
    Ok(())
}

/// A campaign of `count` recipients on its own session, every message read.
async fn fill_campaign(
    store: &dyn Store,
    id: &SessionId,
    count: usize,
    batch: usize,
) -> anyhow::Result<CampaignId> {
    let lease = new_session(store, id).await?;
    let new = NewCampaign {
        session_id: id.clone(),
        name: "scale".into(),
        template: None,
        content: text("Hi {{name}}".into()),
        scheduled_at: None,
        recipients: (0..count).map(|n| (recipient(n), text(format!("Hi N{n}")))).collect(),
        rejected: 0,
    };
    let (campaign, _) = store.create_campaign(new, now()).await?;
    let mut done = 0;
    while done < count {
        let ids = send_through(store, id, lease, batch.min(count - done), done).await?;
        if ids.is_empty() {
            bail!("the campaign's messages stopped after {done}");
        }
        done += ids.len();
    }
    Ok(campaign.id)
}

/// The database's size on disk, in bytes.
async fn database_size(url: &str, data: &std::path::Path) -> anyhow::Result<u64> {
    if url.starts_with("postgres") {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let size: i64 =
            sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&mut conn).await?;
        conn.close().await?;
        return Ok(u64::try_from(size)?);
    }
    let mut size = 0;
    for file in ["wagate.db", "wagate.db-wal"] {
        size += std::fs::metadata(data.join(file)).map(|m| m.len()).unwrap_or(0);
    }
    Ok(size)
}

/// Times `samples` calls of `call`, one at a time.
async fn latency<F, Fut>(samples: usize, mut call: F) -> anyhow::Result<Histogram<u64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut histogram = Histogram::<u64>::new(3)?;
    for _ in 0..samples {
        let started = Instant::now();
        call().await?;
        histogram.record(u64::try_from(started.elapsed().as_micros())?)?;
    }
    Ok(histogram)
}

fn line(what: &str, histogram: &Histogram<u64>) {
    println!(
        "{what:<34} p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
        ms(histogram.value_at_quantile(0.5)),
        ms(histogram.value_at_quantile(0.99)),
        histogram.len()
    );
}

async fn expect_ok(client: &Client, path: &str) -> anyhow::Result<()> {
    // A pooled connection the server closed as idle fails once; the request is made again.
    let (status, body) = match client.get(path).await {
        Ok(answer) => answer,
        Err(_) => client.get(path).await?,
    };
    if status != 200 {
        bail!("GET {path} answered {status}: {body}");
    }
    Ok(())
}

pub(crate) async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let dir = tempfile::TempDir::new()?;
    let url = std::env::var("WAGATE_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("wagate.db").display()));
    let backend = if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    let key = MasterKey::generate();
    let store = open(&url, Keyring::new(vec![key.clone()])?).await?;
    if store.last_event_id().await?.is_some() {
        bail!("the database is not empty: give scale a database of its own");
    }
    // What the empty schema takes, so that the size per message counts only what was filled.
    let empty = database_size(&url, dir.path()).await?;
    let campaign_size = (args.messages / CAMPAIGN_SHARE).min(CAMPAIGN_MAX);
    let direct = args.messages - campaign_size;
    let writers = args.writers.max(1);
    println!(
        "filling {backend} with {} messages ({direct} sent one by one over {writers} sessions, {campaign_size} in a campaign), {} per call",
        args.messages, args.batch
    );
    let started = Instant::now();
    let campaign_session = session("scale-campaign");
    let campaign = fill_campaign(store.as_ref(), &campaign_session, campaign_size, args.batch).await?;
    let fills: Vec<_> = (0..writers)
        .map(|w| {
            let count = direct / writers + usize::from(w < direct % writers);
            tokio::spawn(fill_session(Arc::clone(&store), session(&format!("scale-{w}")), count, args.batch))
        })
        .collect();
    let mut samples: Vec<(SessionId, MessageId)> = Vec::new();
    for (w, fill) in fills.into_iter().enumerate() {
        let id = session(&format!("scale-{w}"));
        samples.extend(fill.await??.into_iter().map(|m| (id.clone(), m)));
    }
    let filled = started.elapsed();
    let last_event = store.last_event_id().await?.context("events")?.seq();
    println!(
        "filled in {:.0} s: {:.0} messages/s, {last_event} events ({:.1} per message)",
        filled.as_secs_f64(),
        args.messages as f64 / filled.as_secs_f64(),
        last_event as f64 / args.messages as f64
    );
    store.close().await;
    drop(store);
    let size = database_size(&url, dir.path()).await?;
    println!(
        "database size: {:.2} GB, {:.0} bytes per message (the empty schema's {:.1} MB left out)",
        size as f64 / 1e9,
        size.saturating_sub(empty) as f64 / args.messages as f64,
        empty as f64 / 1e6
    );

    // A server on the filled database, read over HTTP as a client would.
    let mut config = crate::bench_config(dir.path());
    config.database_url = Some(url.clone().into());
    config.master_key = Some(key.to_base64().into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = wagate_server::Server::start(config, listener).await?;
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("http://{}", server.addr()),
        key: "bench".into(),
    };
    let pick = || samples[rand::rng().random_range(0..samples.len())].clone();
    let history = latency(args.samples, || {
        let (session, before) = pick();
        let client = &client;
        async move {
            expect_ok(client, &format!("/v1/sessions/{session}/messages?limit={PAGE}&before={before}")).await
        }
    })
    .await?;
    let message = latency(args.samples, || {
        let (_, id) = pick();
        let client = &client;
        async move { expect_ok(client, &format!("/v1/messages/{id}")).await }
    })
    .await?;
    let events = latency(args.samples, || {
        let after = rand::rng().random_range(0..last_event);
        let client = &client;
        async move { expect_ok(client, &format!("/v1/events?limit={PAGE}&after=evt_{after}")).await }
    })
    .await?;
    let counts = latency(args.samples, || {
        let client = &client;
        let path = format!("/v1/sessions/{campaign_session}/campaigns/{campaign}");
        async move { expect_ok(client, &path).await }
    })
    .await?;

    // Claims of a session with a queue, through the store as the engine makes them: `queued`
    // messages due now behind as many scheduled for the next day and accepted first (their ids
    // sort first). Each claim's messages are sent before the next claim, untimed, as the engine
    // reports its sends, each under its own WhatsApp id.
    let store = server.store();
    let queue = session("scale-claims");
    let lease = new_session(store.as_ref(), &queue).await?;
    let queued = args.samples.max(100) * CLAIM as usize;
    let tomorrow = now() + chrono::Duration::days(1);
    enqueue(store.as_ref(), &queue, queued, args.batch, Some(tomorrow)).await?;
    enqueue(store.as_ref(), &queue, queued, args.batch, None).await?;
    let request = || ClaimRequest { session_id: queue.clone(), lease, limit: CLAIM, defer: Vec::new() };
    let wa_id = |n: usize| format!("wa-receipt-{n}");
    let mut claims = Histogram::<u64>::new(3)?;
    let mut claimed: Vec<MessageId> = Vec::with_capacity(queued);
    for _ in 0..args.samples {
        let until = now() + chrono::Duration::minutes(10);
        let started = Instant::now();
        let claim = store.claim_outbound(vec![request()], now(), until).await?.pop().context("a claim")?;
        claims.record(u64::try_from(started.elapsed().as_micros())?)?;
        if claim.messages.len() != CLAIM as usize {
            bail!("claimed {} of {CLAIM}", claim.messages.len());
        }
        let ids: Vec<MessageId> = claim.messages.into_iter().map(|c| c.message.id).collect();
        let sent = ids
            .iter()
            .enumerate()
            .map(|(i, id)| StatusUpdate {
                message: MessageRef::Id(id.clone()),
                status: MessageStatus::Sent,
                reason: None,
                wa_id: Some(wa_id(claimed.len() + i)),
                retry_at: None,
            })
            .collect();
        claimed.extend(ids);
        for result in store.apply_statuses(sent, now()).await? {
            result?;
        }
    }
    // What the engine's claims mostly are: fewer due than the limit, here none, and the answer
    // is when the next one will be (the first scheduled one).
    let idle = latency(args.samples, || {
        let store = Arc::clone(store);
        let request = request();
        async move {
            let until = now() + chrono::Duration::minutes(10);
            let claim = store.claim_outbound(vec![request], now(), until).await?.pop().context("a claim")?;
            match claim.next_due {
                Some(due)
                    if claim.messages.is_empty() && due.timestamp_millis() >= tomorrow.timestamp_millis() =>
                {
                    Ok(())
                }
                next => bail!("{} claimed with nothing due, next due {next:?}", claim.messages.len()),
            }
        }
    })
    .await?;

    // Receipts by WhatsApp id, as a connector reports them: `delivered` arrives for the sent
    // messages a batch at a time, and each receipt must find its message among all the
    // session's sent ones.
    let mut next = 0;
    let receipts = latency(args.samples, || {
        let first = next;
        next += CLAIM as usize;
        let updates: Vec<StatusUpdate> = (first..first + CLAIM as usize)
            .map(|n| StatusUpdate {
                message: MessageRef::WaId(queue.clone(), wa_id(n)),
                status: MessageStatus::Delivered,
                reason: None,
                wa_id: None,
                retry_at: None,
            })
            .collect();
        let store = Arc::clone(store);
        async move {
            let results = store.apply_statuses(updates, now()).await?;
            if !results.iter().all(|r| r.as_ref().is_ok_and(|events| events.len() == 1)) {
                bail!("a receipt did not find its message");
            }
            Ok(())
        }
    })
    .await?;

    println!("with {} messages and {last_event} events in the database:", args.messages);
    line(&format!("history page ({PAGE} messages)"), &history);
    line("one message with its history", &message);
    line(&format!("event page ({PAGE}, random after)"), &events);
    line(&format!("campaign counts ({campaign_size} messages)"), &counts);
    line(&format!("claim of {CLAIM} (store, {queued} due, as many ahead)"), &claims);
    line(&format!("claim, none due (store, {queued} ahead)"), &idle);
    line(&format!("{CLAIM} receipts by WhatsApp id (store, {} sent)", claimed.len()), &receipts);
    server.shutdown().await?;
    Ok(())
}
