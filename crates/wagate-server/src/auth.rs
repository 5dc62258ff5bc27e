//! The admin API key: where it comes from and how requests prove they hold it.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use rand::distr::Alphanumeric;
use rand::Rng;
use subtle::ConstantTimeEq;

use crate::api::ApiError;
use crate::AppState;

const KEY_FILE: &str = "admin.key";

/// The key from configuration, or the one kept in the data dir (generated on first start).
pub(crate) fn admin_key(configured: Option<&str>, data_dir: &Path) -> std::io::Result<String> {
    if let Some(key) = configured.filter(|k| !k.is_empty()) {
        return Ok(key.to_owned());
    }
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => {
            tracing::info!("the admin API key is in {}", path.display());
            return Ok(key.trim().to_owned());
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let random: String = rand::rng().sample_iter(Alphanumeric).take(40).map(char::from).collect();
    let key = format!("wg_{random}");
    write_private(&path, &key)?;
    tracing::info!(
        "generated the admin API key, stored in {} and shown only this once: {key}",
        path.display()
    );
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{contents}\n"))
}

/// Compares in time that does not depend on where the strings differ.
fn same_key(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Lets a request through when it carries the admin key (`Authorization: Bearer` or `X-Api-Key`).
pub(crate) async fn require_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim);
    match presented {
        None => Err(ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`")),
        Some(key) if same_key(key, &state.admin_key) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::unauthorized("invalid API key")),
    }
}
