//! When each API key was last used, written in batches: a request only notes it in memory,
//! and a background task writes every key noted since its last write, in one transaction,
//! every `auth.last_used_flush_ms` (and once more on shutdown).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use wagate_core::{KeyId, Timestamp};
use wagate_store::Store;

/// Key uses noted since the last write.
#[derive(Default)]
pub(crate) struct KeyUsage {
    pending: Mutex<HashMap<KeyId, Timestamp>>,
}

impl KeyUsage {
    /// Notes that `key` was used at `at`.
    pub(crate) fn note(&self, key: &KeyId, at: Timestamp) {
        let mut pending = self.pending.lock();
        match pending.get_mut(key) {
            Some(last) => *last = (*last).max(at),
            None => {
                pending.insert(key.clone(), at);
            }
        }
    }

    /// Writes what was noted, every `every`, until `stopping`; then writes once more.
    pub(crate) async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        every: Duration,
        stopping: CancellationToken,
    ) {
        loop {
            let stop = tokio::select! {
                () = tokio::time::sleep(every) => false,
                () = stopping.cancelled() => true,
            };
            self.flush(store.as_ref()).await;
            if stop {
                return;
            }
        }
    }

    async fn flush(&self, store: &dyn Store) {
        let uses: Vec<(KeyId, Timestamp)> = self.pending.lock().drain().collect();
        if let Err(e) = store.record_key_use(&uses).await {
            // Only a time is lost, and the next use notes it again.
            tracing::warn!(error = %e, keys = uses.len(), "cannot record when API keys were last used");
        }
    }
}
