//! Media: the `media_conn` answer that points clients at this server, and
//! the HTTPS endpoint (self-signed, as clients hard-code `https://`) that
//! stores uploaded encrypted blobs and serves them back by direct path. The
//! fake never sees plaintext media: clients encrypt before uploading.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;

use crate::server::FakeServer;
use crate::stanza::{self, iq_result};

/// Uploaded blobs by direct path.
#[derive(Default)]
pub(crate) struct Blobs {
    by_path: Mutex<HashMap<String, Bytes>>,
}

pub(crate) fn media_conn(server: &FakeServer, id: &str) -> Node {
    iq_result(
        id,
        vec![NodeBuilder::new("media_conn")
            .attr("auth", stanza::new_id())
            .attr("ttl", "300")
            .attr("auth_ttl", "3600")
            .attr("max_buckets", "12")
            .children([NodeBuilder::new("host")
                .attr("hostname", server.media_host())
                .attr("type", "primary")
                .build()])
            .build()],
    )
}

#[derive(Clone)]
struct Media {
    host: String,
    blobs: Arc<Blobs>,
}

#[derive(Deserialize)]
struct UploadQuery {
    resume: Option<String>,
}

async fn upload(
    State(media): State<Media>,
    Path((kind, _token)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Response {
    if query.resume.is_some() {
        // Nothing is ever partially uploaded here.
        return (StatusCode::NOT_FOUND, Json(json!({ "resume": "none" }))).into_response();
    }
    let direct_path = format!("/v/t62.7118-24/{}-{kind}.enc", stanza::new_id());
    tracing::debug!(%direct_path, bytes = body.len(), "media uploaded");
    media.blobs.by_path.lock().insert(direct_path.clone(), body);
    let url = format!("https://{}{direct_path}", media.host);
    Json(json!({ "url": url, "direct_path": direct_path })).into_response()
}

async fn download(State(media): State<Media>, Path(rest): Path<String>) -> Response {
    let path = format!("/v/{rest}");
    match media.blobs.by_path.lock().get(&path) {
        Some(blob) => blob.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn tls_config(ip: &str) -> Result<rustls::ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec![ip.to_owned(), "localhost".to_owned()])?;
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?)
}

/// Starts the HTTPS media endpoint next to `near` (same IP, free port) and
/// returns its `host:port`.
pub(crate) async fn start(
    server: &FakeServer,
    near: SocketAddr,
) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(SocketAddr::new(near.ip(), 0)).await.context("bind the media port")?;
    let local = listener.local_addr()?;
    let host = local.to_string();
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&near.ip().to_string())?));
    let app = Router::new()
        .route("/mms/{kind}/{token}", post(upload))
        .route("/v/{*rest}", get(download))
        .with_state(Media { host: host.clone(), blobs: server.blobs() });
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => return tracing::debug!(error = %e, "media TLS handshake failed"),
                };
                let service = TowerToHyperService::new(app);
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                    tracing::debug!(error = %anyhow!("{e}"), "media connection ended");
                }
            });
        }
    });
    Ok((host, task))
}
