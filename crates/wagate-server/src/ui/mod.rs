//! The dashboard: a few static files built into the binary (HTML, CSS and JavaScript modules,
//! no build step), served at `ui.path`. The page holds no data of its own: it calls the API
//! with the admin key the person types at sign-in, so the page needs no key and the API still
//! asks for one on every call.
//!
//! Each file is answered with an `ETag` of its content and `Cache-Control: no-cache`, so a
//! browser keeps it and asks again cheaply (304) and a new binary is picked up at once; a
//! Content-Security-Policy allows nothing but this server, so the page loads nothing from
//! elsewhere and runs no inline script.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::api::{ApiError, ErrorCode};
use crate::AppState;

/// What the page may load and where it may connect: this server only. Images may also be
/// `data:` (the QR code comes so) and `blob:` (media fetched with the key).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One file of the dashboard.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $type:literal),* $(,)?) => {
        [$(Asset { name: $name, content_type: $type, bytes: include_bytes!(concat!("assets/", $name)) }),*]
    };
}

const ASSETS: [Asset; 13] = assets![
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "live.js" => "text/javascript; charset=utf-8",
    "sessions.js" => "text/javascript; charset=utf-8",
    "chats.js" => "text/javascript; charset=utf-8",
    "events.js" => "text/javascript; charset=utf-8",
    "webhooks.js" => "text/javascript; charset=utf-8",
    "campaigns.js" => "text/javascript; charset=utf-8",
    "health.js" => "text/javascript; charset=utf-8",
];

/// Each file's ETag: the start of its SHA-256, computed once.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
        })
        .collect()
});

/// The dashboard's routes under `path`: `path` itself sends the browser to `path/` (so that
/// the page's relative links resolve), `path/` is the page, `path/{file}` its files.
#[allow(clippy::disallowed_methods, reason = "the dashboard's files, not routes of the API or its document")]
pub(crate) fn routes(path: &str) -> Router<AppState> {
    let slash = format!("{path}/");
    let redirect = HeaderValue::from_str(&slash).unwrap_or(HeaderValue::from_static("/"));
    Router::new()
        .route(path, get(move || async move { (StatusCode::PERMANENT_REDIRECT, [(LOCATION, redirect)]) }))
        .route(&slash, get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            &format!("{slash}{{file}}"),
            get(|Path(file): Path<String>, headers: HeaderMap| async move { serve(&file, &headers) }),
        )
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return ApiError::not_found(ErrorCode::RouteNotFound, format!("the dashboard has no file {name:?}"))
            .into_response();
    };
    let asset = &ASSETS[index];
    let etag = ETAGS[index].clone();
    let common = [
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (ETAG, etag.clone()),
        (axum::http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (axum::http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (axum::http::header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (axum::http::header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    let unchanged = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_served() {
        let index = std::str::from_utf8(ASSETS[0].bytes).unwrap_or_default();
        for asset in &ASSETS[1..] {
            let named = index.contains(&format!("./{}", asset.name))
                || ASSETS.iter().any(|a| {
                    std::str::from_utf8(a.bytes).unwrap_or_default().contains(&format!("./{}", asset.name))
                });
            assert!(named, "{} is served but nothing loads it", asset.name);
        }
    }
}
