//! The outbox's writes, committed in groups: the accepted messages, status changes (sends and
//! receipts) or claims of all sessions that wait at a given moment share one transaction
//! (`Messages::write_outbound`). Where the database has one writer (SQLite) the three kinds
//! share one group commit too, so a flow of sends takes a third of the transactions and the
//! writer spends less of its time between them. Where writers run side by side (PostgreSQL)
//! accepts have a group commit of their own, so a client's send never waits behind the node's
//! claims and status changes; those two, written by the node's session tasks, share one, so a
//! node of a cluster, which runs only its share of the sessions, still commits them in few
//! transactions.

use std::sync::Arc;
use std::time::Duration;

use wagate_core::{Clock, Timestamp};
use wagate_store::{
    Accepted, Appended, Claim, ClaimRequest, NewOutbound, OutboundWrites, StatusUpdate, Store, StoreError,
    StoreResult,
};

use crate::group_commit::{CommitError, GroupCommit};

/// Times a batch is written before its error is the answer, when the database refused it only
/// because of another writer (a deadlock).
const WRITE_ATTEMPTS: usize = 3;

/// One write waiting for the next transaction.
#[derive(Clone)]
enum Write {
    Accept(Box<NewOutbound>),
    Status(StatusUpdate),
    Claim(ClaimRequest),
}

/// The answer to one [`Write`], of the same kind.
enum Answer {
    Accepted(Box<StoreResult<Accepted>>),
    Status(StoreResult<Vec<Appended>>),
    Claimed(Claim),
}

/// The outbox's writers: one for accepts and one for the sessions' claims and status changes,
/// or one for all.
pub(super) struct Outbox {
    accepts: Arc<GroupCommit<Write, Answer>>,
    /// The session tasks' claims and status changes.
    sessions: Arc<GroupCommit<Write, Answer>>,
}

impl Outbox {
    /// Starts the writers; claimed messages are leased for `lease`.
    pub(super) fn start(store: &Arc<dyn Store>, clock: &Arc<dyn Clock>, lease: Duration) -> Self {
        let writer = || Arc::new(writer(Arc::clone(store), Arc::clone(clock), lease));
        let sessions = writer();
        let accepts = if store.one_writer() { Arc::clone(&sessions) } else { writer() };
        Self { accepts, sessions }
    }

    /// Accepts an outbound message; answers once it is committed.
    pub(super) async fn accept(&self, new: NewOutbound) -> Result<StoreResult<Accepted>, CommitError> {
        match self.accepts.submit(vec![Write::Accept(Box::new(new))]).await?.pop() {
            Some(Answer::Accepted(result)) => Ok(*result),
            _ => Err(unanswered()),
        }
    }

    /// Claims a session's due messages.
    pub(super) async fn claim(&self, request: ClaimRequest) -> Result<Claim, CommitError> {
        match self.sessions.submit(vec![Write::Claim(request)]).await?.pop() {
            Some(Answer::Claimed(claim)) => Ok(claim),
            _ => Err(unanswered()),
        }
    }

    /// Applies status changes; one answer per update, in order.
    pub(super) async fn apply(
        &self,
        updates: Vec<StatusUpdate>,
    ) -> Result<Vec<StoreResult<Vec<Appended>>>, CommitError> {
        let count = updates.len();
        let answers = self.sessions.submit(updates.into_iter().map(Write::Status).collect()).await?;
        let results: Vec<_> = answers
            .into_iter()
            .filter_map(|answer| match answer {
                Answer::Status(result) => Some(result),
                _ => None,
            })
            .collect();
        if results.len() == count {
            Ok(results)
        } else {
            Err(unanswered())
        }
    }

    /// Stops taking writes, commits what is waiting, then stops.
    pub(super) async fn stop(&self) {
        self.accepts.stop().await;
        self.sessions.stop().await;
    }
}

/// A group commit of outbound writes, trying a batch again when it lost to another writer.
fn writer(store: Arc<dyn Store>, clock: Arc<dyn Clock>, lease: Duration) -> GroupCommit<Write, Answer> {
    GroupCommit::start(move |batch: Vec<Write>| {
        let (store, clock) = (Arc::clone(&store), Arc::clone(&clock));
        async move {
            let mut attempt = 1;
            loop {
                let now = clock.now();
                match write(store.as_ref(), batch.clone(), now, now + lease).await {
                    Err(e) if e.is_transient() && attempt < WRITE_ATTEMPTS => {
                        tracing::debug!(error = %e, attempt, "write lost to another writer; trying again");
                        attempt += 1;
                    }
                    written => return written,
                }
            }
        }
    })
}

fn unanswered() -> CommitError {
    CommitError::Store("the store gave no answer for an outbound write".into())
}

/// Writes a batch in one transaction and answers each write in order.
async fn write(
    store: &dyn Store,
    batch: Vec<Write>,
    now: Timestamp,
    lease_until: Timestamp,
) -> StoreResult<Vec<Answer>> {
    // Which list each write went to, in the batch's order.
    enum Kind {
        Accept,
        Status,
        Claim,
    }
    let mut writes = OutboundWrites::default();
    let mut kinds = Vec::with_capacity(batch.len());
    for write in batch {
        match write {
            Write::Accept(new) => {
                kinds.push(Kind::Accept);
                writes.accepts.push(*new);
            }
            Write::Status(update) => {
                kinds.push(Kind::Status);
                writes.statuses.push(update);
            }
            Write::Claim(request) => {
                kinds.push(Kind::Claim);
                writes.claims.push(request);
            }
        }
    }
    let written = store.write_outbound(writes, now, lease_until).await?;
    let mut accepted = written.accepted.into_iter().map(|result| Answer::Accepted(Box::new(result)));
    let mut statuses = written.statuses.into_iter().map(Answer::Status);
    let mut claimed = written.claimed.into_iter().map(Answer::Claimed);
    kinds
        .into_iter()
        .map(|kind| match kind {
            Kind::Accept => accepted.next(),
            Kind::Status => statuses.next(),
            Kind::Claim => claimed.next(),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| StoreError::Corrupt("an outbound write without its answer".into()))
}
