//! Authentication: the bootstrap admin key (where it comes from), and the middleware that
//! turns a request's credentials (the admin key, an API key, or a JWT) into its [`Principal`].

mod jwt;
mod limits;
mod principal;
mod usage;

pub(crate) use jwt::Jwt;
pub(crate) use limits::RateLimits;
pub(crate) use principal::{org_not_found, scope, Actor, Caller, Principal};
pub(crate) use usage::KeyUsage;

use std::path::Path;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, OriginalUri, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::distr::Alphanumeric;
use rand::Rng;
use subtle::ConstantTimeEq;
use wagate_core::{ActorKind, AuditEntry};

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

/// The prefix of API keys of organizations (the bootstrap admin key has `wg_`).
pub(crate) const KEY_PREFIX: &str = "wgk_";

/// A new API key secret: 256 random bits, so a fast hash of it is safe to keep.
pub(crate) fn generate_secret() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("{KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What is kept of a key secret: its SHA-256, in hex. A slow password hash is for secrets
/// people choose; a 256-bit random secret cannot be guessed from its SHA-256, and a fast hash
/// keeps the lookup on every request cheap.
pub(crate) fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

/// Lets a request through when it carries a valid key (`Authorization: Bearer` or
/// `X-Api-Key`) or JWT (`Authorization: Bearer`), with its [`Principal`] in the request's extensions; then records it in the
/// audit log when it changes something (any method but GET and HEAD) or was refused a 401.
pub(crate) async fn require_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Started::of(&request, state.engine.now());
    let (principal, response) = match authenticate(&state, request.headers()).await {
        Ok(principal) => match state.rate_limits.admit(&principal) {
            Ok(admitted) => {
                request.extensions_mut().insert(principal.clone());
                let mut response = next.run(request).await;
                if let Some(admitted) = admitted {
                    admitted.write(response.headers_mut());
                }
                (Some(principal), response)
            }
            Err(limited) => (Some(principal), limited.into_response()),
        },
        Err(refused) => (None, refused.into_response()),
    };
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || !matches!(started.method, Method::GET | Method::HEAD) {
        state.audit.record(started.entry(principal.as_ref(), status)).await;
    }
    response
}

/// What the audit log keeps of a request, taken before it is handled.
struct Started {
    at: wagate_core::Timestamp,
    method: Method,
    route: String,
    target: BTreeMap<String, String>,
    request_id: Option<String>,
    source: Option<String>,
}

impl Started {
    fn of(request: &Request, at: wagate_core::Timestamp) -> Self {
        // Under a nested router the URI lost its prefix; the original one has it, as the route does.
        let path = request.extensions().get::<OriginalUri>().map_or(request.uri().path(), |uri| uri.0.path());
        let route = request.extensions().get::<MatchedPath>().map_or(path, MatchedPath::as_str).to_owned();
        // The ids the route names: the path's segments where the template has `{name}`.
        let target = route
            .split('/')
            .zip(path.split('/'))
            .filter_map(|(template, given)| {
                let name = template.strip_prefix('{')?.strip_suffix('}')?;
                Some((name.to_owned(), given.to_owned()))
            })
            .collect();
        Self {
            at,
            method: request.method().clone(),
            route,
            target,
            request_id: request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            source: request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()),
        }
    }

    fn entry(self, principal: Option<&Principal>, status: StatusCode) -> AuditEntry {
        let (actor_kind, actor_id) = match principal.map(Principal::actor) {
            None => (ActorKind::Anonymous, None),
            Some(Actor::Admin) => (ActorKind::Admin, None),
            Some(Actor::Key(id)) => (ActorKind::Key, Some(id.to_string())),
            Some(Actor::Jwt(subject)) => (ActorKind::Jwt, Some(subject.clone())),
        };
        AuditEntry {
            id: None,
            at: self.at,
            request_id: self.request_id,
            actor_kind,
            actor_id,
            org_id: principal.and_then(|p| p.org().cloned()),
            source: self.source,
            method: self.method.to_string(),
            route: self.route,
            target: self.target,
            status: status.as_u16(),
        }
    }
}

/// The caller the request's credentials name, or 401.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim);
    let Some(presented) = presented else {
        return Err(ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`"));
    };
    if same_key(presented, &state.admin_key) {
        return Ok(Principal::operator());
    }
    let invalid = || ApiError::unauthorized("invalid API key");
    if !presented.starts_with(KEY_PREFIX) {
        return match &state.jwt {
            Some(jwt) if Jwt::looks_like_one(presented) => bearer(state, jwt, presented).await,
            _ => Err(invalid()),
        };
    }
    // Looked up by its hash, so the comparison never touches the secret itself.
    let key = state.engine.store().find_key(&secret_hash(presented)).await?.ok_or_else(invalid)?;
    let now = state.engine.now();
    if !key.is_valid(now) {
        return Err(ApiError::unauthorized(if key.revoked_at.is_some() {
            "this API key was revoked"
        } else {
            "this API key has expired"
        }));
    }
    state.key_usage.note(&key.id, now);
    Ok(Principal::member(Actor::Key(key.id), key.org_id, key.scopes, key.sessions))
}

/// The member of an organization a JWT names, or 401 saying why not.
async fn bearer(state: &AppState, jwt: &Jwt, token: &str) -> Result<Principal, ApiError> {
    let bearer = jwt.verify(token).await.map_err(|refused| ApiError::unauthorized(refused.to_string()))?;
    if state.engine.store().get_org(&bearer.org).await?.is_none() {
        return Err(ApiError::unauthorized(format!(
            "this token's organization {:?} does not exist",
            bearer.org.as_str()
        )));
    }
    Ok(Principal::member(Actor::Jwt(bearer.subject), bearer.org, bearer.scopes, bearer.sessions))
}
