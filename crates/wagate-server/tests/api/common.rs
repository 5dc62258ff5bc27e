//! A wagate server for one test, and the HTTP calls tests make.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpListener;
use wagate_server::{Config, Server};
use wagate_store::testing::{self, TestDatabase};

pub const KEY: &str = "test-admin-key";

/// Set to `postgres` (with `WAGATE_TEST_POSTGRES_URL` naming a server) to run this suite on
/// PostgreSQL, each test on a database of its own.
pub const DATABASE_VAR: &str = "WAGATE_TEST_DATABASE";

/// Where a test's servers keep their data: a temp dir, and on PostgreSQL runs a database of
/// its own, dropped with this.
pub struct TestData {
    dir: TempDir,
    database: Option<TestDatabase>,
    /// Another node's database, which this node shares.
    shared: Option<String>,
}

impl TestData {
    pub async fn new() -> Arc<Self> {
        let database = match std::env::var(DATABASE_VAR).as_deref() {
            Ok("postgres") => {
                let server = testing::postgres_server()
                    .unwrap_or_else(|| panic!("{DATABASE_VAR}=postgres needs {}", testing::POSTGRES_URL_VAR));
                Some(TestDatabase::create(&server).await.expect("a test database"))
            }
            Ok("sqlite") | Err(_) => None,
            Ok(other) => panic!("{DATABASE_VAR}={other}: give sqlite or postgres"),
        };
        Arc::new(Self { dir: TempDir::new().expect("temp dir"), database, shared: None })
    }

    /// For cluster tests: a PostgreSQL database of its own, whatever the suite runs on.
    /// `None` (the test is skipped) when no server is configured, which CI does not allow.
    pub async fn postgres() -> Option<Arc<Self>> {
        let server = testing::postgres_server()?;
        let database = TestDatabase::create(&server).await.expect("a test database");
        Some(Arc::new(Self {
            dir: TempDir::new().expect("temp dir"),
            database: Some(database),
            shared: None,
        }))
    }

    /// Another node's data: a data dir of its own on this one's database.
    pub fn another_node(&self) -> Arc<Self> {
        let shared = self.database_url();
        Arc::new(Self { dir: TempDir::new().expect("temp dir"), database: None, shared })
    }

    fn database_url(&self) -> Option<String> {
        self.database.as_ref().map(|db| db.url.clone()).or_else(|| self.shared.clone())
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Takes the database away under a running server.
    pub async fn lose_database(&self) {
        match &self.database {
            Some(database) => database.drop_now().await.expect("drop the database"),
            None => {
                for file in ["wagate.db", "wagate.db-wal", "wagate.db-shm"] {
                    let _ = std::fs::remove_file(self.path().join(file));
                }
            }
        }
    }
}

/// A configuration value that must not be zero.
pub fn nz<T: TryInto<U>, U>(value: T) -> U
where
    T::Error: std::fmt::Debug,
{
    value.try_into().expect("not zero")
}

/// The configuration tests run with: every delay shrunk to milliseconds.
pub fn fast_config(data: &TestData) -> Config {
    let mut config = Config {
        data_dir: data.path().to_owned(),
        database_url: data.database_url().map(Into::into),
        admin_key: Some(KEY.into()),
        master_key: Some(testing::MASTER_KEY.into()),
        ..Config::default()
    };
    config.connectors.sim.qr_interval_ms = nz(5_000);
    config.connectors.sim.delivery_delay_ms = 10;
    config.connectors.sim.read_delay_ms = 30;
    config.engine.reconnect_min_ms = 20;
    config.engine.reconnect_max_ms = nz(100);
    config.engine.send_retry_base_ms = 20;
    config.api.wait_timeout_ms = 5_000;
    config.events.poll_interval_ms = nz(50);
    config.webhooks.allow_private_targets = true;
    config.webhooks.retry_schedule_ms = vec![20; 5];
    config.webhooks.retry_jitter_percent = 0;
    config.webhooks.timeout_ms = nz(2_000);
    config.webhooks.poll_interval_ms = nz(20);
    config
}

/// A node's configuration: heartbeats and leases in milliseconds.
pub fn node_config(data: &TestData, id: &str) -> Config {
    let mut config = fast_config(data);
    config.node_id = id.into();
    config.node.heartbeat_ms = nz(100);
    config.node.lease_ttl_ms = 500;
    // A message claimed by a node that dies is claimed again this soon.
    config.engine.send_lease_ms = 300;
    config
}

/// The first node's data on a new PostgreSQL database; other nodes join with `another_node`.
pub async fn cluster_data() -> Arc<TestData> {
    TestData::postgres()
        .await
        .unwrap_or_else(|| panic!("set {} to run cluster tests", wagate_store::testing::POSTGRES_URL_VAR))
}

/// The value of one sample line of a Prometheus text page (0 when absent).
pub fn sample(page: &str, name_and_labels: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name_and_labels).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// `GET /metrics`, checked to be Prometheus text.
pub async fn metrics_page(server: &TestServer) -> String {
    let response = server.request(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    response.text().await.unwrap()
}

struct Killable {
    kill: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

pub struct TestServer {
    server: Option<Server>,
    /// A server on its own runtime, which the test can kill (see [`TestServer::start_killable`]).
    killable: Option<Killable>,
    key: String,
    pub dir: Arc<TestData>,
    pub config: Config,
    pub base: String,
    client: reqwest::Client,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = TestData::new().await;
        let mut config = fast_config(&dir);
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: Arc<TestData>, config: Config) -> Self {
        Self::start_with_clock(dir, config, Arc::new(wagate_core::SystemClock)).await
    }

    /// A server whose time is `clock`.
    pub async fn start_with_clock(
        dir: Arc<TestData>,
        config: Config,
        clock: Arc<dyn wagate_core::Clock>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Server::start_with_clock(config.clone(), listener, clock).await.expect("server starts");
        let base = format!("http://{}", server.addr());
        let key = server.admin_key().to_owned();
        Self { server: Some(server), killable: None, key, dir, config, base, client: reqwest::Client::new() }
    }

    /// A server on its own thread and runtime, so that [`TestServer::kill`] can stop it the
    /// way a crash would: every task dropped where it stands, nothing shut down.
    pub fn start_killable(dir: Arc<TestData>, config: Config) -> Self {
        let (started, addr) = std::sync::mpsc::channel();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let server_config = config.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let server = runtime.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                Server::start(server_config, listener).await.expect("server starts")
            });
            started.send((server.addr(), server.admin_key().to_owned())).expect("report the address");
            let _ = killed.recv();
            runtime.shutdown_background();
            // The server's tasks are gone with the runtime; what is left of it is not shut down.
            std::mem::forget(server);
        });
        let (addr, key) = addr.recv().expect("server starts");
        Self {
            server: None,
            killable: Some(Killable { kill, thread }),
            key,
            dir,
            config,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    /// Kills a server started with [`TestServer::start_killable`].
    pub fn kill(mut self) -> (Arc<TestData>, Config) {
        let killable = self.killable.take().expect("a killable server");
        let _ = killable.kill.send(());
        killable.thread.join().expect("server thread");
        (Arc::clone(&self.dir), self.config.clone())
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    /// Stops the server gracefully and starts a new one on the same data dir.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        Self::start_in(Arc::clone(&self.dir), self.config.clone()).await
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key)
    }

    /// The same server, called with another key.
    pub fn with_key(&self, key: &str) -> Caller<'_> {
        Caller { server: self, key: key.to_owned() }
    }

    /// Creates an organization (with the admin key).
    pub async fn create_org(&self, id: &str, quotas: Value) -> Value {
        let (status, body) = self.post("/v1/orgs", json!({ "id": id, "quotas": quotas })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates an API key of `org` with `scopes` (with the admin key); answers its secret.
    pub async fn create_key(&self, org: &str, scopes: &[&str], sessions: Option<&[&str]>) -> String {
        let (status, body) = self
            .post(
                "/v1/keys",
                json!({ "name": "test", "org_id": org, "scopes": scopes, "sessions": sessions }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["secret"].as_str().expect("secret").to_owned()
    }

    pub async fn call(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(self.request(Method::PATCH, path).json(&body)).await
    }

    /// Registers a webhook; answers its id and secret.
    pub async fn create_webhook(&self, url: &str, events: Value) -> (String, String) {
        let (status, body) = self.post("/v1/webhooks", json!({ "url": url, "events": events })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (body["id"].as_str().expect("id").to_owned(), body["secret"].as_str().expect("secret").to_owned())
    }

    /// A webhook's deliveries, newest first.
    pub async fn deliveries(&self, webhook: &str, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/webhooks/{webhook}/deliveries?limit=500{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().expect("data").clone()
    }

    pub async fn create_session(&self, id: &str) -> Value {
        let (status, body) = self.post("/v1/sessions", json!({ "id": id, "connector": "sim" })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates (if needed), connects and links a sim session to `phone` by scanning its QR code.
    pub async fn link(&self, id: &str, phone: &str) {
        if self.get(&format!("/v1/sessions/{id}")).await.0 == StatusCode::NOT_FOUND {
            self.create_session(id).await;
        }
        let (status, body) = self.post(&format!("/v1/sessions/{id}/connect"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let qr = self.wait_for_qr(id).await;
        let (status, body) = self.post("/v1/sim/scan", json!({ "code": qr, "phone": phone })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.wait_for_status(id, "connected").await;
    }

    pub async fn wait_for_qr(&self, id: &str) -> String {
        eventually(|| async {
            let (status, body) = self.get(&format!("/v1/sessions/{id}/qr")).await;
            (status == StatusCode::OK).then(|| body["code"].as_str().expect("code").to_owned())
        })
        .await
    }

    pub async fn wait_for_status(&self, id: &str, wanted: &str) -> Value {
        eventually(|| async {
            let (_, body) = self.get(&format!("/v1/sessions/{id}")).await;
            (body["status"] == wanted).then_some(body)
        })
        .await
    }

    pub async fn send_text(&self, session: &str, to: &str, body: &str) -> Value {
        let (status, message) = self
            .post(
                &format!("/v1/sessions/{session}/messages"),
                json!({ "to": to, "type": "text", "text": { "body": body } }),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{message}");
        message
    }

    /// Sends `count` texts `{prefix}0`, `{prefix}1`, …; returns their ids in order.
    pub async fn send_texts(&self, session: &str, to: &str, prefix: &str, count: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let message = self.send_text(session, to, &format!("{prefix}{i}")).await;
            ids.push(message["id"].as_str().expect("id").to_owned());
        }
        ids
    }

    pub async fn wait_for_message_status(&self, id: &str, wanted: &str) -> Value {
        eventually(|| async {
            let (_, body) = self.get(&format!("/v1/messages/{id}")).await;
            (body["status"] == wanted).then_some(body)
        })
        .await
    }

    /// Waits until a message was sent (it may be delivered or read already); returns it.
    pub async fn wait_until_sent(&self, id: &str) -> Value {
        eventually(|| async {
            let (_, body) = self.get(&format!("/v1/messages/{id}")).await;
            matches!(body["status"].as_str(), Some("sent" | "delivered" | "read")).then_some(body)
        })
        .await
    }

    /// Every event in the log, paging through it.
    pub async fn all_events(&self) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = String::new();
        loop {
            let (status, body) = self.get(&format!("/v1/events?limit=1000{after}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let page = body["data"].as_array().expect("data").clone();
            if page.is_empty() {
                return events;
            }
            after = format!("&after={}", body["next_after"].as_str().expect("next_after"));
            events.extend(page);
        }
    }

    /// The messages of a session in one direction, oldest first.
    pub async fn messages(&self, session: &str, direction: &str) -> Vec<Value> {
        let (status, body) =
            self.get(&format!("/v1/sessions/{session}/messages?direction={direction}&limit=500")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut messages = body["data"].as_array().expect("data").clone();
        messages.reverse();
        messages
    }
}

/// Calls to a server with a key other than its admin key.
pub struct Caller<'a> {
    server: &'a TestServer,
    key: String,
}

impl Caller<'_> {
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.server.client.request(method, format!("{}{path}", self.server.base)).bearer_auth(&self.key)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.server.call(request).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// Polls until `check` returns a value; fails the test after fifteen seconds.
pub async fn eventually<T, F, Fut>(check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(15), check).await
}

/// Polls until `check` returns a value; fails the test after `limit`.
pub async fn eventually_within<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The statuses in a message's history, in order.
pub fn history(message: &Value) -> Vec<String> {
    message["status_history"]
        .as_array()
        .expect("status_history")
        .iter()
        .map(|h| h["status"].as_str().expect("status").to_owned())
        .collect()
}

/// An event's position in the log (`evt_0000000000000042` → 42).
pub fn event_seq(event: &Value) -> u64 {
    event["id"].as_str().expect("id").trim_start_matches("evt_").parse().expect("numeric event id")
}

/// A small PNG (it sniffs as `image/png`) as base64, for a media body's `data`.
pub fn png_base64() -> String {
    use base64::Engine as _;
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..500u32).map(|i| (i % 251) as u8));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
