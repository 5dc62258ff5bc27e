//! The retention sweep: every `retention.sweep_ms`, each node deletes the events, webhook
//! deliveries and messages older than their configured age, in batches with a pause between
//! them, so that a sweep never keeps sends waiting for the database. Nodes do not take turns:
//! every delete checks its conditions as it runs, so two sweeps at once delete each row once.

use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, histogram};
use tokio_util::sync::CancellationToken;
use wagate_core::{Clock, Timestamp};
use wagate_store::{Store, StoreResult, Swept};

use crate::config::{ms, RetentionConfig};

/// What a sweep deletes from, as metrics name it.
#[derive(Debug, Clone, Copy)]
enum Table {
    Events,
    WebhookDeliveries,
    Messages,
}

impl Table {
    fn as_str(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::WebhookDeliveries => "webhook_deliveries",
            Table::Messages => "messages",
        }
    }

    fn age_ms(self, config: &RetentionConfig) -> u64 {
        match self {
            Table::Events => config.events_ms,
            Table::WebhookDeliveries => config.deliveries_ms,
            Table::Messages => config.messages_ms,
        }
    }
}

/// Sweeps every `retention.sweep_ms` until `stopping`, when any age is set.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: RetentionConfig,
    stopping: CancellationToken,
) {
    let tables = [Table::Events, Table::WebhookDeliveries, Table::Messages];
    if tables.iter().all(|table| table.age_ms(&config) == 0) {
        return;
    }
    let mut every = tokio::time::interval(ms(config.sweep_ms.get()));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stopping.run_until_cancelled(every.tick()).await.is_some() {
        for table in tables {
            let age = table.age_ms(&config);
            if age == 0 {
                continue;
            }
            let cutoff = clock.now() - chrono::Duration::milliseconds(i64::try_from(age).unwrap_or(i64::MAX));
            let started = Instant::now();
            match sweep(store.as_ref(), table, cutoff, &config, &stopping).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(table = table.as_str(), deleted, "retention deleted old rows"),
                Err(e) => {
                    tracing::warn!(table = table.as_str(), error = %e, "retention sweep failed; trying again later");
                }
            }
            histogram!("wagate_retention_sweep_duration_seconds", "table" => table.as_str())
                .record(started.elapsed().as_secs_f64());
        }
    }
}

/// Deletes `table`'s rows older than `cutoff`, batch after batch; answers how many.
async fn sweep(
    store: &dyn Store,
    table: Table,
    cutoff: Timestamp,
    config: &RetentionConfig,
    stopping: &CancellationToken,
) -> StoreResult<u64> {
    let limit = config.batch.get();
    let mut total = 0;
    // Each table is walked by its own key; only the cursor's type differs.
    let (mut events, mut deliveries, mut messages) = (None, None, None);
    loop {
        let (deleted, more) = match table {
            Table::Events => next(store.expire_events(cutoff, events, limit).await?, &mut events),
            Table::WebhookDeliveries => {
                next(store.expire_deliveries(cutoff, deliveries, limit).await?, &mut deliveries)
            }
            Table::Messages => {
                next(store.expire_messages(cutoff, messages.clone(), limit).await?, &mut messages)
            }
        };
        counter!("wagate_retention_deleted_total", "table" => table.as_str()).increment(deleted);
        total += deleted;
        if !more {
            return Ok(total);
        }
        let pause = tokio::time::sleep(ms(config.pause_ms));
        if stopping.run_until_cancelled(pause).await.is_none() {
            return Ok(total);
        }
    }
}

/// Moves `cursor` to where the next batch starts; answers the rows deleted and whether there
/// is a next batch.
fn next<K>(swept: Swept<K>, cursor: &mut Option<K>) -> (u64, bool) {
    let more = swept.resume_after.is_some();
    *cursor = swept.resume_after;
    (swept.deleted, more)
}
