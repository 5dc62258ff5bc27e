//! `web-idle`: the memory of web sessions that are built (device loaded from the store, the
//! client and its caches ready) but not connected: the cost of holding many linked accounts.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use wagate_connect::web::{WebConfig, WebConnector};
use wagate_connect::{MediaFiles, SessionSpec};
use wagate_core::{ConnectorKind, DeviceKeys, Media, MediaId, SessionId};
use wagate_store::{NewSession, SqliteStore, Store};

#[derive(clap::Args)]
pub(crate) struct WebIdleArgs {
    /// How many sessions to build.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
}

/// Idle sessions move no media.
struct NoMedia;

#[async_trait::async_trait]
impl MediaFiles for NoMedia {
    async fn load(&self, id: &MediaId) -> Result<Vec<u8>, String> {
        Err(format!("no media {id} in this benchmark"))
    }

    async fn store(
        &self,
        _session: &SessionId,
        _bytes: Vec<u8>,
        _filename: Option<String>,
    ) -> Result<Media, String> {
        Err("no media in this benchmark".into())
    }
}

pub(crate) async fn run(args: WebIdleArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keyring = wagate_store::Keyring::new(vec![wagate_store::MasterKey::generate()])?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&format!("sqlite://{}", dir.path().join("bench.db").display()), keyring).await?,
    );
    let ids: Vec<SessionId> =
        (0..args.sessions).map(|i| SessionId::parse(&format!("web-{i}"))).collect::<Result<_, _>>()?;
    for id in &ids {
        let new = NewSession {
            id: id.clone(),
            org_id: wagate_core::OrgId::default_org(),
            connector: ConnectorKind::Web,
            name: None,
            config: json!({}),
            metadata: json!({}),
        };
        store.create_session(new, chrono::Utc::now()).await?;
    }
    let keys: Arc<dyn DeviceKeys> = store.clone();
    let config = WebConfig { client_version: Some((2, 3000, 1_023_456_789)), ..WebConfig::default() };
    let connector = WebConnector::new(keys, Arc::new(NoMedia), config);
    let before = super::memory_mib("VmRSS:");
    let started = Instant::now();
    let mut held = Vec::with_capacity(ids.len());
    for id in &ids {
        let (sink, events) = tokio::sync::mpsc::unbounded_channel();
        let spec = SessionSpec { id: id.clone(), credentials: None, pairing_phone: None };
        let built = connector.build(&spec, sink).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        held.push((built, events));
    }
    let built_in = started.elapsed();
    let after = super::memory_mib("VmRSS:");
    let per = (after - before) * 1024.0 / args.sessions as f64;
    println!("web sessions built (not connected): {}", args.sessions);
    println!(
        "built in {:.2} s ({:.1} ms per session, each device created in the store)",
        built_in.as_secs_f64(),
        built_in.as_secs_f64() * 1000.0 / args.sessions as f64
    );
    println!("RSS before: {before:.1} MiB, after: {after:.1} MiB: {per:.0} KiB per session");
    drop(held);
    store.close().await;
    Ok(())
}
