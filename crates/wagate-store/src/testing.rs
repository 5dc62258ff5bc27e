//! Test support for the suites of this and other crates (the `testing` feature, for their
//! dev-dependencies): a fresh PostgreSQL database per test, dropped when the test is done, and
//! [`on_both_stores!`](crate::on_both_stores) to run tests on both backends.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, PgConnection};

use crate::{Keyring, MasterKey, StoreResult};

/// The master key (base64) tests seal secrets with: one for every store and server of a test
/// suite, so that a node started on another's database opens its secrets.
pub const MASTER_KEY: &str = "NZT6o6OCsnfhf+5q9LH8qgoMn8RXm8Ofkyfo2oTXL7M=";

/// A keyring of [`MASTER_KEY`].
pub fn keyring() -> Keyring {
    Keyring::new(vec![MasterKey::parse(MASTER_KEY).expect("the test master key parses")])
        .expect("one key is a keyring")
}

/// The environment variable naming the PostgreSQL server tests use
/// (`postgres://user@host:port/db`; the database named there is only used to connect).
pub const POSTGRES_URL_VAR: &str = "WAGATE_TEST_POSTGRES_URL";

/// The PostgreSQL server to test against: `WAGATE_TEST_POSTGRES_URL`. PostgreSQL tests are
/// `#[ignore]`d, so that a run without a server reports them as not run; asked for
/// (`--include-ignored`) without one, they fail. Under CI (`CI` set) a missing URL is an error.
pub fn postgres_server() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{POSTGRES_URL_VAR} must name a PostgreSQL server when CI is set")
        }
        _ => None,
    }
}

/// Runs each named test on SQLite and on PostgreSQL, each time on a new database.
///
/// `on_both_stores!(Fixture: a, b)` expects, beside the call, a type `Fixture` with
/// `async fn new(postgres: bool) -> Option<Fixture>` (`None` when no PostgreSQL server is
/// named) and the tests `async fn a(f: Fixture)`, … It makes modules `sqlite` and `postgres`
/// with one `#[tokio::test]` each per test; the PostgreSQL ones are ignored unless asked for
/// (`cargo test -- --include-ignored`), since they need a server.
#[macro_export]
macro_rules! on_both_stores {
    ($fixture:ident: $($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::$fixture::new(false).await.unwrap()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            #[ignore = "needs WAGATE_TEST_POSTGRES_URL"]
            async fn $name() {
                let fixture = super::$fixture::new(true).await.unwrap_or_else(|| {
                    panic!("set {} to run on PostgreSQL", $crate::testing::POSTGRES_URL_VAR)
                });
                super::$name(fixture).await;
            })*
        }
    };
}

pub use crate::on_both_stores;

/// Waits until a statement on `store`'s database waits for a lock (`Stats::lock_waits`): a
/// test holding a row lock then knows that the statement it blocks has begun. Panics after 15
/// seconds.
pub async fn wait_for_a_lock_wait(store: &dyn crate::Store) {
    let started = std::time::Instant::now();
    while store.stats().await.expect("the store's stats").lock_waits == 0 {
        assert!(started.elapsed().as_secs() < 15, "no statement waited for a lock");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A database of its own for one test, dropped (with any connections left) when this is.
#[derive(Debug)]
pub struct TestDatabase {
    server: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database on the server at `server` (a URL).
    pub async fn create(server: &str) -> StoreResult<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.subsec_nanos()).unwrap_or(0);
        let name =
            format!("wagate_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut conn = PgConnection::connect(server).await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        conn.close().await?;
        let (base, query) = server.split_once('?').map_or((server, None), |(b, q)| (b, Some(q)));
        let host_end = base.find("://").map_or(0, |i| i + 3);
        let root = base[host_end..].find('/').map_or(base, |i| &base[..host_end + i]);
        let url = match query {
            Some(query) => format!("{root}/{name}?{query}"),
            None => format!("{root}/{name}"),
        };
        Ok(Self { server: server.to_owned(), name, url })
    }

    /// Drops the database now, cutting off whoever is connected (a database that went away).
    pub async fn drop_now(&self) -> StoreResult<()> {
        let mut conn = PgConnection::connect(&self.server).await?;
        conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str()).await?;
        conn.close().await?;
        Ok(())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside any runtime the test may have had; a thread of its own with a
        // runtime of its own works from both kinds of test.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let mut conn = PgConnection::connect(&server).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.ok()?;
                conn.close().await.ok()
            })
        });
        if dropped.join().ok().flatten().is_none() {
            tracing::warn!(database = %self.name, "could not drop the test database");
        }
    }
}
