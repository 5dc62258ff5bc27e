//! The dashboard at `/ui`: its files come from the binary with the right types and headers,
//! the page needs no key while the API it calls still does, and it can be moved or turned off.

use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use reqwest::StatusCode;

use crate::common::TestServer;

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn the_dashboard_serves_its_files_without_a_key_and_the_api_still_asks_for_one() {
    let server = TestServer::start().await;
    let client = plain_client();

    let bare = client.get(format!("{}/ui", server.base)).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()[LOCATION], "/ui/");

    let page = client.get(format!("{}/ui/", server.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="./app.js">"#), "{html}");
    // Nothing from elsewhere: every script and style the page names is its own.
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");

    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("sessions.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let answer = client.get(format!("{}/ui/{file}", server.base)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{file}");
        assert_eq!(answer.headers()[CONTENT_TYPE], content_type, "{file}");
        assert_eq!(answer.headers()["x-content-type-options"], "nosniff", "{file}");
        assert!(!answer.bytes().await.unwrap().is_empty(), "{file}");
    }

    // The ETag is the content's: a browser asking again with it gets 304, no body.
    let etag = headers[ETAG].clone();
    let again =
        client.get(format!("{}/ui/", server.base)).header(IF_NONE_MATCH, etag.clone()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG], etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let script = client.get(format!("{}/ui/app.js", server.base)).send().await.unwrap();
    assert_ne!(script.headers()[ETAG], etag, "each file has its own tag");

    let missing = client.get(format!("{}/ui/nothing.js", server.base)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(error["error"]["code"], "route_not_found");

    // The page is public; what it shows is not.
    let api = client.get(format!("{}/v1/sessions", server.base)).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_dashboard_moves_with_its_path_and_is_gone_when_turned_off() {
    let moved = TestServer::start_with(|config| config.ui.path = "/admin/wagate".into()).await;
    let client = plain_client();
    let page = client.get(format!("{}/admin/wagate/", moved.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("./app.js"));
    let old = client.get(format!("{}/ui/", moved.base)).send().await.unwrap();
    assert_eq!(old.status(), StatusCode::NOT_FOUND);

    let off = TestServer::start_with(|config| config.ui.enabled = false).await;
    for path in ["/ui", "/ui/", "/ui/app.js"] {
        let answer = client.get(format!("{}{path}", off.base)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = off.get("/v1/sessions").await;
    assert_eq!(status, StatusCode::OK, "the API is there without the dashboard");
}
