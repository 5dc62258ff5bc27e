//! Bearer JWTs: verified against an HS256 secret, RS256/ES256 public keys from PEM files, or a
//! JWKS document that a small server in the test serves and rotates while the gateway runs; a
//! token is a member of its organization, with its scopes and sessions, its own rate-limit
//! bucket and its subject in the audit log. The keys are test-only, in `jwt_keys/`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::response::IntoResponse;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{json, Value};
use wagate_server::{Config, Server};

use crate::common::{eventually, fast_config, nz, TestData, TestServer};

const SECRET: &str = "a-test-only-secret-of-32-bytes-or-more";
const AUDIENCE: &str = "wagate-tests";
const ISSUER: &str = "https://issuer.example";

fn key_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/jwt_keys").join(name)
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(key_file(name)).unwrap()
}

/// The private key `name` (`rsa-a`, `ec-b`, …) of the fixtures, to sign with.
fn signing_key(name: &str) -> EncodingKey {
    if name.starts_with("rsa") {
        EncodingKey::from_rsa_pem(&pem(&format!("{name}.pem"))).unwrap()
    } else {
        EncodingKey::from_ec_pem(&pem(&format!("{name}.pem"))).unwrap()
    }
}

fn algorithm_of(name: &str) -> Algorithm {
    if name.starts_with("rsa") {
        Algorithm::RS256
    } else {
        Algorithm::ES256
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The claims of a token of `sub` in `org` with `scope`, valid for ten minutes.
fn claims(sub: &str, org: &str, scope: &str) -> Value {
    json!({ "sub": sub, "org": org, "scope": scope, "aud": AUDIENCE, "iss": ISSUER, "exp": now() + 600 })
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(), None, claims)
}

/// A token signed with the fixture key `name`, with `kid`.
fn signed_by(name: &str, kid: Option<&str>, claims: &Value) -> String {
    sign(algorithm_of(name), &signing_key(name), kid, claims)
}

/// JWTs on: the audience and issuer of these tests, plus what `tweak` sets (the HS256 secret
/// unless it says otherwise).
async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|config| {
        let jwt = &mut config.auth.jwt;
        jwt.hs256_secret = Some(SECRET.into());
        jwt.audience = Some(AUDIENCE.into());
        jwt.issuer = Some(ISSUER.into());
        tweak(config);
    })
    .await
}

/// Sessions `a1` and `a2` in organization `acme`, and `d1` in `default`.
async fn two_organizations(server: &TestServer) {
    server.create_org("acme", json!({})).await;
    for (id, org) in [("a1", "acme"), ("a2", "acme"), ("d1", "default")] {
        let (status, body) =
            server.post("/v1/sessions", json!({ "id": id, "connector": "sim", "org_id": org })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

fn session_ids(body: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> =
        body["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// Asserts that `token` gets 401 `unauthorized` with a message containing `why`.
async fn assert_refused(server: &TestServer, token: &str, why: &str) {
    let (status, body) = server.with_key(token).get("/v1/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "expected {why:?} in {message:?}");
    assert!(!message.contains(SECRET) && !message.contains("BEGIN"), "{message}");
}

#[tokio::test]
async fn an_hs256_token_is_a_member_of_its_organization_with_its_scopes() {
    let server = start(|_| {}).await;
    two_organizations(&server).await;
    let reader = server.with_key(&hs256(&claims("alice", "acme", "sessions:read")));

    let (status, body) = reader.get("/v1/sessions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(session_ids(&body), ["a1", "a2"]);
    assert_eq!(reader.get("/v1/sessions/a1").await.0, StatusCode::OK);
    // Another organization's session is answered as a missing one.
    let (status, body) = reader.get("/v1/sessions/d1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "session_not_found");

    // Its scopes are all it may do.
    let (status, body) = reader.post("/v1/sessions", json!({ "id": "a3", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["scope"], "sessions:manage");
    // A list in the claim works as well as the OAuth 2 string.
    let manager = hs256(
        &json!({ "sub": "bob", "org": "acme", "scope": ["sessions:manage"], "aud": AUDIENCE, "iss": ISSUER, "exp": now() + 600 }),
    );
    let (status, body) =
        server.with_key(&manager).post("/v1/sessions", json!({ "id": "a3", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["org_id"], "acme", "created in the token's organization");
}

#[tokio::test]
async fn a_read_only_token_cannot_send_and_an_admin_token_is_not_the_operator() {
    let server = start(|_| {}).await;
    two_organizations(&server).await;
    server.link("a1", "15550001111").await;
    let send = json!({ "to": "15550002222", "type": "text", "text": { "body": "hello" } });

    let reader = hs256(&claims("reader", "acme", "sessions:read messages:read"));
    let (status, body) = server.with_key(&reader).post("/v1/sessions/a1/messages", send.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["scope"], "messages:send");
    let sender = hs256(&claims("sender", "acme", "messages:send"));
    let (status, body) = server.with_key(&sender).post("/v1/sessions/a1/messages", send).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // `admin` in a token is its organization's admin (its keys and audit log), never the
    // gateway's operator (organizations, the cluster).
    let admin = server.with_key(&hs256(&claims("root", "acme", "admin")));
    assert_eq!(admin.get("/v1/keys").await.0, StatusCode::OK);
    let (status, body) = admin.get("/v1/orgs").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = admin.post("/v1/orgs", json!({ "id": "mine" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = admin.get("/v1/sessions").await;
    assert_eq!(session_ids(&body), ["a1", "a2"], "{status}");
}

#[tokio::test]
async fn a_token_limited_to_sessions_reaches_only_those() {
    let server = start(|_| {}).await;
    two_organizations(&server).await;
    let mut limited = claims("carol", "acme", "sessions:read");
    limited["sessions"] = json!(["a1"]);
    let limited = server.with_key(&hs256(&limited));
    assert_eq!(limited.get("/v1/sessions/a1").await.0, StatusCode::OK);
    assert_eq!(limited.get("/v1/sessions/a2").await.0, StatusCode::NOT_FOUND);
    let (status, body) = limited.get("/v1/sessions").await;
    assert_eq!((status, session_ids(&body)), (StatusCode::OK, vec!["a1"]));

    let mut malformed = claims("carol", "acme", "sessions:read");
    malformed["sessions"] = json!("a1");
    assert_refused(&server, &hs256(&malformed), "`sessions` claim must be a list of session ids").await;
}

#[tokio::test]
async fn expired_early_foreign_forged_and_unfit_tokens_get_401_saying_why() {
    let server = start(|_| {}).await;
    let good = claims("alice", "default", "sessions:read");
    let with = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        hs256(&claims)
    };
    // The leeway (30 s by default) forgives a clock a little behind.
    assert_eq!(server.with_key(&with("exp", json!(now() - 5))).get("/v1/sessions").await.0, StatusCode::OK);

    assert_refused(&server, &with("exp", json!(now() - 120)), "expired").await;
    assert_refused(&server, &with("nbf", json!(now() + 600)), "not valid yet").await;
    assert_refused(&server, &with("aud", json!("another-service")), "another audience").await;
    assert_refused(&server, &with("iss", json!("https://elsewhere.example")), "another issuer").await;
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-of-32-bytes-or-more!").unwrap(),
        None,
        &good,
    );
    assert_refused(&server, &forged, "signature does not verify").await;
    let mut no_subject = good.clone();
    no_subject.as_object_mut().unwrap().remove("sub");
    assert_refused(&server, &hs256(&no_subject), "`sub`").await;
    let mut no_expiry = good.clone();
    no_expiry.as_object_mut().unwrap().remove("exp");
    assert_refused(&server, &hs256(&no_expiry), "`exp`").await;
    assert_refused(&server, "not.a.jwt", "not a well-formed JWT").await;
    // `alg: none` is not an algorithm this gateway knows.
    let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", base64_url(&good.to_string()));
    assert_refused(&server, &unsigned, "not a well-formed JWT").await;

    let mut no_org = good.clone();
    no_org.as_object_mut().unwrap().remove("org");
    assert_refused(&server, &hs256(&no_org), "lacks the `org` claim").await;
    assert_refused(&server, &with("org", json!("nowhere")), "organization \"nowhere\" does not exist").await;
    assert_refused(&server, &with("scope", json!("")), "grants no scope").await;
    assert_refused(
        &server,
        &with("scope", json!("sessions:read launch:rockets")),
        "unknown scope \"launch:rockets\"",
    )
    .await;

    // Each refusal is in the audit log, like a refused key: an anonymous caller and 401.
    let entries = eventually(|| async {
        let (_, body) = server.get("/v1/audit?status=401&limit=100").await;
        let data = body["data"].as_array().unwrap().clone();
        (data.len() >= 13).then_some(data)
    })
    .await;
    assert_eq!(entries.len(), 13);
    for entry in &entries {
        assert_eq!(
            (entry["actor_kind"].as_str(), entry["route"].as_str()),
            (Some("anonymous"), Some("/v1/sessions"))
        );
        assert!(entry["actor_id"].is_null() && entry["org_id"].is_null(), "{entry}");
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_the_configured_public_keys() {
    let server = start(|config| {
        config.auth.jwt.hs256_secret = None;
        config.auth.jwt.public_key_files = vec![key_file("rsa-a.pub.pem"), key_file("ec-a.pub.pem")];
    })
    .await;
    let good = claims("alice", "default", "sessions:read");
    for signer in ["rsa-a", "ec-a"] {
        let (status, body) = server.with_key(&signed_by(signer, None, &good)).get("/v1/sessions").await;
        assert_eq!(status, StatusCode::OK, "{signer}: {body}");
    }
    for stranger in ["rsa-b", "ec-b"] {
        assert_refused(&server, &signed_by(stranger, None, &good), "signature does not verify").await;
    }
    // The public key used as an HMAC secret (the algorithm confusion attack) gets nowhere:
    // without a configured secret, HS256 is not accepted at all.
    let confused =
        sign(Algorithm::HS256, &EncodingKey::from_secret(&pem("rsa-a.pub.pem")).unwrap(), None, &good);
    assert_refused(&server, &confused, "does not accept HS256 tokens").await;
}

/// A JWKS document served over HTTP, which the test can replace, counting its fetches.
struct Issuer {
    url: String,
    document: Arc<Mutex<JwkSet>>,
    fetches: Arc<AtomicUsize>,
    /// While set, the document is answered with 503.
    down: Arc<AtomicBool>,
}

impl Issuer {
    #[allow(clippy::disallowed_methods, reason = "the issuer's own server, not a route of the API")]
    async fn start(keys: &[(&str, &str)]) -> Self {
        let document = Arc::new(Mutex::new(jwk_set(keys)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (served, counted, unavailable) = (Arc::clone(&document), Arc::clone(&fetches), Arc::clone(&down));
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let answer = if unavailable.load(Ordering::SeqCst) {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    axum::Json(served.lock().clone()).into_response()
                };
                async move { answer }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, document, fetches, down }
    }

    /// Publishes these keys instead of the ones before.
    fn rotate(&self, keys: &[(&str, &str)]) {
        *self.document.lock() = jwk_set(keys);
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// The public keys of fixtures as a JWKS document: `(kid, fixture)`.
fn jwk_set(keys: &[(&str, &str)]) -> JwkSet {
    let keys = keys
        .iter()
        .map(|(kid, name)| {
            let public = pem(&format!("{name}.pub.pem"));
            let decoding = if name.starts_with("rsa") {
                DecodingKey::from_rsa_pem(&public).unwrap()
            } else {
                DecodingKey::from_ec_pem(&public).unwrap()
            };
            let mut jwk = Jwk::from_decoding_key(&decoding, Some(algorithm_of(name))).unwrap();
            jwk.common.key_id = Some((*kid).to_owned());
            jwk
        })
        .collect();
    JwkSet { keys }
}

#[tokio::test]
async fn a_jwks_key_rotation_works_while_the_gateway_runs() {
    let issuer = Issuer::start(&[("k1", "rsa-a")]).await;
    let server = start(|config| {
        config.auth.jwt.hs256_secret = None;
        config.auth.jwt.jwks_url = Some(issuer.url.clone());
        config.auth.jwt.jwks_refetch_min_ms = nz(1u64);
    })
    .await;
    let good = claims("alice", "default", "sessions:read");
    let old = signed_by("rsa-a", Some("k1"), &good);
    assert_eq!(server.with_key(&old).get("/v1/sessions").await.0, StatusCode::OK);

    // The issuer rotates to a new key (and kind of key) under a new kid: the first token that
    // names it makes the gateway fetch the document again, without waiting for the schedule.
    issuer.rotate(&[("k2", "ec-b")]);
    let new = signed_by("ec-b", Some("k2"), &good);
    let (status, body) = server.with_key(&new).get("/v1/sessions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The retired key is gone from the gateway too.
    assert_refused(&server, &old, "no signing key has this token's kid \"k1\"").await;
    // A token naming the new kid but signed with another key is refused.
    assert_refused(&server, &signed_by("ec-a", Some("k2"), &good), "signature does not verify").await;
}

#[tokio::test]
async fn a_gateway_that_cannot_reach_the_issuer_at_start_runs_and_takes_tokens_once_it_can() {
    let issuer = Issuer::start(&[("k1", "rsa-a")]).await;
    issuer.set_down(true);
    let server = start(|config| {
        config.auth.jwt.hs256_secret = None;
        config.auth.jwt.jwks_url = Some(issuer.url.clone());
        config.auth.jwt.jwks_refetch_min_ms = nz(1u64);
    })
    .await;
    // The admin key and API keys work meanwhile; tokens cannot be verified yet.
    assert_eq!(server.get("/v1/sessions").await.0, StatusCode::OK);
    let token = signed_by("rsa-a", Some("k1"), &claims("alice", "default", "sessions:read"));
    assert_refused(&server, &token, "no signing key has this token's kid \"k1\"").await;
    issuer.set_down(false);
    let (status, body) = server.with_key(&token).get("/v1/sessions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unknown_kids_fetch_the_jwks_at_most_every_refetch_interval_and_the_schedule_catches_up() {
    let issuer = Issuer::start(&[("k1", "rsa-a")]).await;
    let jwks = |config: &mut Config, refresh_ms: u64| {
        config.auth.jwt.hs256_secret = None;
        config.auth.jwt.jwks_url = Some(issuer.url.clone());
        config.auth.jwt.jwks_refresh_ms = nz(refresh_ms);
        config.auth.jwt.jwks_refetch_min_ms = nz(3_600_000u64);
    };
    let server = start(|config| jwks(config, 3_600_000)).await;
    assert_eq!(issuer.fetches(), 1, "fetched once at start");
    issuer.rotate(&[("k2", "rsa-b")]);
    let new = signed_by("rsa-b", Some("k2"), &claims("alice", "default", "sessions:read"));
    for _ in 0..5 {
        assert_refused(&server, &new, "no signing key has this token's kid \"k2\"").await;
    }
    assert_eq!(issuer.fetches(), 1, "tokens with unknown kids cannot make the gateway hammer the issuer");

    // A gateway that refreshes on its schedule picks the new key up by itself.
    issuer.rotate(&[("k1", "rsa-a")]);
    let scheduled = start(|config| jwks(config, 20)).await;
    issuer.rotate(&[("k2", "rsa-b")]);
    eventually(|| async {
        (scheduled.with_key(&new).get("/v1/sessions").await.0 == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_token_has_its_own_rate_limit_bucket_by_subject() {
    let server = start(|config| {
        config.rate_limits.key_per_second = nz(1u32);
        config.rate_limits.key_burst = nz(2u32);
    })
    .await;
    let alice = hs256(&claims("alice", "default", "sessions:read"));
    let codes: Vec<StatusCode> = {
        let mut codes = Vec::new();
        for _ in 0..3 {
            codes.push(server.with_key(&alice).get("/v1/sessions").await.0);
        }
        codes
    };
    assert_eq!(codes, [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
    let (_, body) = server.with_key(&alice).get("/v1/sessions").await;
    assert_eq!(body["error"]["details"]["limit"], "subject", "{body}");
    // A new token of the same subject shares the bucket; another subject has its own.
    let again = hs256(&claims("alice", "default", "sessions:read messages:read"));
    assert_eq!(server.with_key(&again).get("/v1/sessions").await.0, StatusCode::TOO_MANY_REQUESTS);
    let bob = hs256(&claims("bob", "default", "sessions:read"));
    assert_eq!(server.with_key(&bob).get("/v1/sessions").await.0, StatusCode::OK);
    // So has the same subject in another organization: a subject names someone only within one.
    server.create_org("acme", json!({})).await;
    let alice_of_acme = hs256(&claims("alice", "acme", "sessions:read"));
    assert_eq!(server.with_key(&alice_of_acme).get("/v1/sessions").await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_audit_log_names_a_tokens_subject_and_organization() {
    let server = start(|_| {}).await;
    server.create_org("acme", json!({})).await;
    let manager = hs256(&claims("dana@acme.example", "acme", "sessions:manage"));
    let (status, _) =
        server.with_key(&manager).post("/v1/sessions", json!({ "id": "s1", "connector": "sim" })).await;
    assert_eq!(status, StatusCode::CREATED);

    let entry = eventually(|| async {
        let (_, body) = server.get("/v1/audit?actor_id=dana@acme.example").await;
        body["data"].as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(entry["actor_kind"], "jwt");
    assert_eq!(entry["org_id"], "acme");
    assert_eq!((entry["method"].as_str(), entry["route"].as_str()), (Some("POST"), Some("/v1/sessions")));
    assert_eq!(entry["status"], 201);
    // The organization's admin, with a token too, reads it.
    let admin = hs256(&claims("root", "acme", "admin"));
    let (status, body) = server.with_key(&admin).get("/v1/audit?route=/v1/sessions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["actor_id"], "dana@acme.example");
}

#[tokio::test]
async fn without_jwt_configuration_a_token_is_just_an_invalid_key() {
    let server = TestServer::start().await;
    let token = hs256(&claims("alice", "default", "sessions:read"));
    let (status, body) = server.with_key(&token).get("/v1/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["message"], "invalid API key");
}

/// Why `tweak` stops the start, as the operator reads it.
async fn start_error(tweak: impl FnOnce(&mut Config)) -> String {
    let data = TestData::new().await;
    let mut config = fast_config(&data);
    config.auth.jwt.audience = Some(AUDIENCE.into());
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match Server::start(config, listener).await {
        Ok(server) => {
            server.shutdown().await.unwrap();
            panic!("the server started");
        }
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn a_jwt_configuration_that_cannot_work_stops_the_start_naming_what_to_fix() {
    let missing = key_file("missing.pem");
    let error = start_error(|c| c.auth.jwt.public_key_files = vec![missing.clone()]).await;
    assert!(error.contains("auth.jwt.public_key_files") && error.contains("missing.pem"), "{error}");
    let error = start_error(|c| c.auth.jwt.public_key_files = vec![key_file("rsa-a.pem")]).await;
    assert!(error.contains("holds a private key"), "{error}");
    let error = start_error(|c| c.auth.jwt.public_key_files = vec![key_file("README.md")]).await;
    assert!(error.contains("not an RSA or P-256 public key"), "{error}");
    let error = start_error(|c| c.auth.jwt.jwks_url = Some("ftp://issuer.example/jwks".into())).await;
    assert!(error.contains("auth.jwt.jwks_url"), "{error}");
    let error = start_error(|c| c.auth.jwt.hs256_secret = Some("short".into())).await;
    assert!(error.contains("auth.jwt.hs256_secret must be at least 32 bytes"), "{error}");
    let error = start_error(|c| {
        c.auth.jwt.hs256_secret = Some(SECRET.into());
        c.auth.jwt.audience = None;
    })
    .await;
    assert!(error.contains("auth.jwt.audience must be set"), "{error}");
}
