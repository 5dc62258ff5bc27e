//! The audit trail: the auth layer hands each entry over (a call that changes something, or a
//! refused authentication), and a writer appends them to the store in batches, off the
//! request's path. Nothing is dropped: when the writer falls behind by `audit.queue` entries,
//! requests wait for it; when the store fails, the batch is retried; an entry that still cannot
//! be written at shutdown is logged in full as an error.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wagate_core::{AuditEntry, Clock};
use wagate_store::Store;

use crate::config::{ms, AuditConfig};
use crate::tasks::Tasks;

/// Most entries written in one transaction.
const BATCH: usize = 500;
/// How long the writer waits before trying a failed batch again.
const RETRY: Duration = Duration::from_millis(200);

/// Where requests hand their audit entries.
pub(crate) struct AuditTrail {
    sender: mpsc::Sender<AuditEntry>,
}

impl AuditTrail {
    /// Starts the writer and the retention sweep on `tasks`.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: &AuditConfig,
        tasks: &Tasks,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(config.queue.get());
        tasks.spawn(write(Arc::clone(&store), receiver, tasks.stopping()));
        if config.retention_ms > 0 {
            tasks.spawn(sweep(store, clock, config.clone(), tasks.stopping()));
        }
        Self { sender }
    }

    /// Hands an entry to the writer, waiting while its queue is full.
    pub(crate) async fn record(&self, entry: AuditEntry) {
        if let Err(refused) = self.sender.send(entry).await {
            tracing::error!(entry = ?refused.0, "the audit writer has stopped: this entry is not in the audit log");
        }
    }
}

async fn write(store: Arc<dyn Store>, mut entries: mpsc::Receiver<AuditEntry>, stopping: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            n = entries.recv_many(&mut batch, BATCH) => n,
            () = stopping.cancelled() => {
                // Take no more; write what is queued.
                entries.close();
                entries.recv_many(&mut batch, BATCH).await
            }
        };
        if received == 0 {
            return;
        }
        let mut attempts = 0;
        while let Err(e) = store.append_audit(&batch).await {
            attempts += 1;
            if stopping.is_cancelled() && attempts >= 3 {
                for entry in &batch {
                    tracing::error!(?entry, error = %e, "cannot write this audit entry; it is not in the audit log");
                }
                break;
            }
            tracing::error!(error = %e, entries = batch.len(), "cannot write audit entries; retrying");
            tokio::time::sleep(RETRY).await;
        }
        batch.clear();
    }
}

async fn sweep(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: AuditConfig,
    stopping: CancellationToken,
) {
    let retention = chrono::Duration::milliseconds(i64::try_from(config.retention_ms).unwrap_or(i64::MAX));
    let mut every = tokio::time::interval(ms(config.retention_sweep_ms.get()));
    while stopping.run_until_cancelled(every.tick()).await.is_some() {
        loop {
            match store.expire_audit(clock.now() - retention, 1000).await {
                Ok(1000) => continue,
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted expired audit entries"),
                Err(e) => tracing::warn!(error = %e, "audit retention failed; trying again later"),
            }
            break;
        }
    }
}
