//! Group commit: writes that arrive together are committed together. One transaction for
//! many writes is what lets SQLite's single writer keep up with thousands of messages a
//! second across many sessions, while every caller still hears back only after its own
//! writes are committed. Lookups that many tasks make at once are batched the same way (the
//! sim network's question whether a number is linked on another node).

use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wagate_store::StoreError;

use crate::tasks::Tasks;

/// The most submissions folded into one transaction.
const MAX_JOBS: usize = 512;

/// Why a submission was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CommitError {
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("store error: {0}")]
    Store(String),
}

type Job<I, O> = (Vec<I>, oneshot::Sender<Result<Vec<O>, CommitError>>);

/// A writer task that commits the items of all waiting submissions in one call.
pub(crate) struct GroupCommit<I, O> {
    jobs: mpsc::Sender<Job<I, O>>,
    writer: Tasks,
}

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts the writer; `commit` writes a batch in one transaction and answers one output per
    /// input, in order.
    pub(crate) fn start<F, Fut>(commit: F) -> Self
    where
        F: FnMut(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, StoreError>> + Send + 'static,
    {
        let (jobs, rx) = mpsc::channel(MAX_JOBS * 4);
        let writer = Tasks::default();
        writer.spawn(commit_loop(rx, commit, writer.stopping()));
        Self { jobs, writer }
    }

    /// Commits `items` (with whatever else is waiting); answers once they are committed.
    pub(crate) async fn submit(&self, items: Vec<I>) -> Result<Vec<O>, CommitError> {
        if self.writer.is_stopping() {
            return Err(CommitError::ShuttingDown);
        }
        let (reply, answer) = oneshot::channel();
        self.jobs.send((items, reply)).await.map_err(|_| CommitError::ShuttingDown)?;
        answer.await.map_err(|_| CommitError::ShuttingDown)?
    }

    /// Stops taking submissions, commits what is waiting, then stops.
    pub(crate) async fn stop(&self) {
        self.writer.stop().await;
    }
}

async fn commit_loop<I, O, F, Fut>(
    mut jobs: mpsc::Receiver<Job<I, O>>,
    mut commit: F,
    stop: CancellationToken,
) where
    F: FnMut(Vec<I>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, StoreError>>,
{
    let mut batch: Vec<Job<I, O>> = Vec::with_capacity(MAX_JOBS);
    loop {
        let received = tokio::select! {
            biased;
            received = jobs.recv_many(&mut batch, MAX_JOBS) => received,
            // Closed, the channel still yields what was sent before, then nothing.
            () = stop.cancelled() => {
                jobs.close();
                continue;
            }
        };
        if received == 0 {
            return;
        }
        let mut sizes = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        let mut items = Vec::new();
        for (job, reply) in batch.drain(..) {
            sizes.push(job.len());
            replies.push(reply);
            items.extend(job);
        }
        match commit(items).await {
            Ok(outputs) => {
                let mut outputs = outputs.into_iter();
                for (size, reply) in sizes.into_iter().zip(replies) {
                    let _ = reply.send(Ok(outputs.by_ref().take(size).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "a batch of writes or lookups failed");
                let error = CommitError::Store(e.to_string());
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_stop_commits_what_was_submitted_and_refuses_what_comes_after() {
        let writes = Arc::new(GroupCommit::start(|items: Vec<u32>| async move { Ok(items) }));
        let submitted: Vec<_> = (1..=3)
            .map(|n| {
                let writes = Arc::clone(&writes);
                tokio::spawn(async move { writes.submit(vec![n]).await })
            })
            .collect();
        // Each submission is queued (the test runtime runs one task at a time).
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        writes.stop().await;
        for (n, submission) in (1..=3).zip(submitted) {
            assert_eq!(submission.await.expect("submitted").expect("committed"), vec![n]);
        }
        assert!(matches!(writes.submit(vec![4]).await, Err(CommitError::ShuttingDown)));
    }
}
