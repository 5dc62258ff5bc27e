//! Test support for the suites of this and other crates: a fresh PostgreSQL database per
//! test, dropped when the test is done.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, PgConnection};

use crate::StoreResult;

/// The environment variable naming the PostgreSQL server tests use
/// (`postgres://user@host:port/db`; the database named there is only used to connect).
pub const POSTGRES_URL_VAR: &str = "WAGATE_TEST_POSTGRES_URL";

/// The PostgreSQL server to test against: `WAGATE_TEST_POSTGRES_URL`. Unset, PostgreSQL
/// tests are skipped, except under CI (`CI` set), where that is an error.
pub fn postgres_server() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{POSTGRES_URL_VAR} must name a PostgreSQL server when CI is set")
        }
        _ => None,
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
