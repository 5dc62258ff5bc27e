//! What a run wrote to PostgreSQL: rows inserted, updated and deleted per table, and
//! transactions committed, read from the database's statistics views before and after.
//! (SQLite keeps no such counts.)

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

/// Counts at one moment: per table (inserted, updated, deleted), and commits.
#[derive(PartialEq)]
pub(crate) struct Snapshot {
    tables: BTreeMap<String, [i64; 3]>,
    commits: i64,
}

/// The database `WAGATE_DATABASE_URL` names, when it is PostgreSQL.
pub(crate) fn database() -> Option<String> {
    std::env::var("WAGATE_DATABASE_URL").ok().filter(|url| url.starts_with("postgres"))
}

async fn read(url: &str) -> anyhow::Result<Snapshot> {
    // A new connection each time: statistics are read once per transaction and cached.
    let mut conn = PgConnection::connect(url).await?;
    let rows: Vec<(String, i64, i64, i64)> =
        sqlx::query_as("SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
            .fetch_all(&mut conn)
            .await?;
    let commits: i64 =
        sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&mut conn)
            .await?;
    conn.close().await?;
    Ok(Snapshot { tables: rows.into_iter().map(|(t, i, u, d)| (t, [i, u, d])).collect(), commits })
}

/// The counts once every connection has reported its own: backends publish their counts
/// when idle, up to seconds later, so this waits until two reads a second apart agree.
pub(crate) async fn settled(url: &str) -> anyhow::Result<Snapshot> {
    let mut last = read(url).await?;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = read(url).await?;
        // Only the reads themselves committed since: nothing else is still reporting.
        if now.tables == last.tables && now.commits - last.commits <= 2 {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Prints the writes per 1,000 messages between two snapshots.
pub(crate) fn report(before: &Snapshot, after: &Snapshot, messages: usize) {
    let per_1000 = |n: i64| n as f64 * 1000.0 / messages as f64;
    println!("writes per 1,000 messages (PostgreSQL statistics): table inserted/updated/deleted");
    let mut total = 0;
    for (table, [ins, upd, del]) in &after.tables {
        let [ins0, upd0, del0] = before.tables.get(table).copied().unwrap_or_default();
        let (ins, upd, del) = (ins - ins0, upd - upd0, del - del0);
        if ins + upd + del == 0 {
            continue;
        }
        total += ins + upd + del;
        println!("  {table:<28} {:>8.0} {:>8.0} {:>8.0}", per_1000(ins), per_1000(upd), per_1000(del));
    }
    println!("  row writes in all: {:.0}", per_1000(total));
    println!("  transactions committed: {:.0}", per_1000(after.commits - before.commits));
}
