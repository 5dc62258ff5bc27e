//! Accepting outbound messages. Requests that arrive together are committed together (group
//! commit): one transaction for many messages is what lets one SQLite writer accept thousands
//! of messages a second, and every caller still hears yes only after its message is committed.

use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use wagate_core::{Clock, Event};
use wagate_store::{Accepted, NewOutbound, Store, StoreError};

/// The most messages committed in one transaction.
const MAX_BATCH: usize = 512;

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("session not found")]
    SessionNotFound,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("store error: {0}")]
    Store(String),
}

type Job = (NewOutbound, oneshot::Sender<Result<Accepted, AcceptError>>);

pub(super) struct Acceptor {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Acceptor {
    pub(super) fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        let (jobs, rx) = mpsc::channel(MAX_BATCH * 4);
        let task = tokio::spawn(commit_loop(store, clock, events, rx));
        Self { jobs: Mutex::new(Some(jobs)), task: Mutex::new(Some(task)) }
    }

    pub(super) async fn submit(&self, new: NewOutbound) -> Result<Accepted, AcceptError> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let jobs = jobs.ok_or(AcceptError::ShuttingDown)?;
        let (reply, answer) = oneshot::channel();
        jobs.send((new, reply)).await.map_err(|_| AcceptError::ShuttingDown)?;
        answer.await.map_err(|_| AcceptError::ShuttingDown)?
    }

    /// Commits what is waiting, then stops.
    pub(super) async fn stop(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn commit_loop(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<Event>,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (news, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match store.accept_outbound(news, clock.now()).await {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    let answer = result.map_err(|e| match e {
                        StoreError::NotFound(_) => AcceptError::SessionNotFound,
                        other => AcceptError::Store(other.to_string()),
                    });
                    if let Ok(Accepted { event: Some(event), .. }) = &answer {
                        let _ = events.send(event.clone());
                    }
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not commit accepted messages");
                for reply in replies {
                    let _ = reply.send(Err(AcceptError::Store(e.to_string())));
                }
            }
        }
    }
}
