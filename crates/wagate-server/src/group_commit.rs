//! Group commit: writes that arrive together are committed together. One transaction for
//! many writes is what lets SQLite's single writer keep up with thousands of messages a
//! second across many sessions, while every caller still hears back only after its own
//! writes are committed.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wagate_store::StoreError;

/// The most submissions folded into one transaction.
const MAX_JOBS: usize = 512;

/// Why a submission was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("store error: {0}")]
    Store(String),
}

type Job<I, O> = (Vec<I>, oneshot::Sender<Result<Vec<O>, CommitError>>);

/// A writer task that commits the items of all waiting submissions in one call.
pub(crate) struct GroupCommit<I, O> {
    jobs: Mutex<Option<mpsc::Sender<Job<I, O>>>>,
    task: Mutex<Option<JoinHandle<()>>>,
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
        let task = tokio::spawn(commit_loop(rx, commit));
        Self { jobs: Mutex::new(Some(jobs)), task: Mutex::new(Some(task)) }
    }

    /// Commits `items` (with whatever else is waiting); answers once they are committed.
    pub(crate) async fn submit(&self, items: Vec<I>) -> Result<Vec<O>, CommitError> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let jobs = jobs.ok_or(CommitError::ShuttingDown)?;
        let (reply, answer) = oneshot::channel();
        jobs.send((items, reply)).await.map_err(|_| CommitError::ShuttingDown)?;
        answer.await.map_err(|_| CommitError::ShuttingDown)?
    }

    /// Commits what is waiting, then stops taking submissions.
    pub(crate) async fn stop(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn commit_loop<I, O, F, Fut>(mut jobs: mpsc::Receiver<Job<I, O>>, mut commit: F)
where
    F: FnMut(Vec<I>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, StoreError>>,
{
    let mut batch: Vec<Job<I, O>> = Vec::with_capacity(MAX_JOBS);
    while jobs.recv_many(&mut batch, MAX_JOBS).await > 0 {
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
                tracing::error!(error = %e, "could not commit a batch of writes");
                let error = CommitError::Store(e.to_string());
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
