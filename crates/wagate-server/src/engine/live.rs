//! The live event feed. One task numbers what writers committed (on PostgreSQL events are
//! numbered after commit: `Events::sequence_events`), reads the log in id order and broadcasts
//! what it reads, so every live subscriber sees events in log order whichever writer committed
//! them; a subscriber that resumes reads the log first, then joins the feed without a gap or a
//! repeat.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;
use wagate_core::{Clock, Event, EventId, EventType, OrgId, SessionId, Signal};
use wagate_store::{EventQuery, Store, StoreError};

use crate::tasks::Tasks;

/// Events read from the log per query.
const PAGE: u32 = 500;

/// This node's numbering turns kept for [`LiveFeed::numbered_here`] at most (the metrics
/// observer forgets them as it passes them; this bounds them if it falls behind).
const TURNS_KEPT: usize = 4096;

pub(super) struct LiveFeed {
    log: Arc<Log>,
    sender: broadcast::Sender<Event>,
    wake: Arc<Notify>,
    follower: Tasks,
}

impl LiveFeed {
    /// Starts following the log from its current end; `buffer` is how far a subscriber may
    /// fall behind, `poll` how often the log is read when nothing announced new events.
    pub(super) fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>, buffer: usize, poll: Duration) -> Self {
        let (sender, _) = broadcast::channel(buffer);
        let wake = Arc::new(Notify::new());
        let follower = Tasks::default();
        let log = Arc::new(Log {
            store,
            clock,
            reading: tokio::sync::Mutex::default(),
            numbered_here: parking_lot::Mutex::default(),
        });
        follower.spawn(follow(
            Arc::clone(&log),
            sender.clone(),
            Arc::clone(&wake),
            poll,
            follower.stopping(),
        ));
        Self { log, sender, wake, follower }
    }

    /// Whether the task that follows the log is alive.
    pub(super) fn is_running(&self) -> bool {
        self.follower.is_running()
    }

    /// Numbers what is committed now, so that a read that follows sees it (nothing to do where
    /// events are numbered as they are appended).
    pub(super) async fn number(&self) {
        if self.log.store.numbers_at_append() {
            return;
        }
        let _reading = self.log.reading.lock().await;
        self.log.number().await;
    }

    /// New events were committed, here or (numbered) on another node.
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Whether this node numbered event `id`: each event is numbered once in the cluster, so
    /// counting the events a node numbered counts each event once over all nodes. On a store
    /// that numbers events as they are appended, the one node numbers them all. Asked in log
    /// order: turns that end before `id` are forgotten.
    pub(super) fn numbered_here(&self, id: EventId) -> bool {
        if self.log.store.numbers_at_append() {
            return true;
        }
        let mut turns = self.log.numbered_here.lock();
        turns.retain(|turn| *turn.end() >= id);
        turns.iter().any(|turn| turn.contains(&id))
    }

    /// Broadcasts what is committed, then stops.
    pub(super) async fn stop(&self) {
        self.follower.stop().await;
    }
}

/// The log as the feed's task sees it.
struct Log {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Held by a turn this node takes, and by the feed's task while it reads the log: so the
    /// task never reads an event a turn of this node numbered before that turn is recorded in
    /// `numbered_here`.
    reading: tokio::sync::Mutex<()>,
    /// The ids this node's turns gave that [`LiveFeed::numbered_here`] has not passed yet.
    numbered_here: parking_lot::Mutex<VecDeque<RangeInclusive<EventId>>>,
}

impl Log {
    /// Numbers the events committed since the last call (on any node), and tells the other
    /// nodes' feeds to read them. Nodes take turns; one that finds nothing left to number has
    /// nothing to announce.
    async fn number(&self) {
        let started = std::time::Instant::now();
        let numbered = self.store.sequence_events(self.clock.now()).await;
        crate::metrics::events_numbered(started.elapsed());
        match numbered {
            Ok(numbered) if numbered.turns.is_empty() => {}
            Ok(numbered) => {
                {
                    let mut turns = self.numbered_here.lock();
                    turns.extend(numbered.turns);
                    let excess = turns.len().saturating_sub(TURNS_KEPT);
                    turns.drain(..excess);
                }
                if let Err(e) = self.store.signal(&[Signal::Events]).await {
                    tracing::warn!(error = %e, "cannot tell the other nodes about new events; they read them at their next poll");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot number new events; trying again at the next wake-up")
            }
        }
    }
}

async fn follow(
    log: Arc<Log>,
    sender: broadcast::Sender<Event>,
    wake: Arc<Notify>,
    poll: Duration,
    stop: CancellationToken,
) {
    let store = &log.store;
    let mut last = loop {
        match store.last_event_id().await {
            Ok(last) => break last,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the event log; retrying");
                if stop.run_until_cancelled(tokio::time::sleep(poll)).await.is_none() {
                    return;
                }
            }
        }
    };
    loop {
        let reading = log.reading.lock().await;
        log.number().await;
        loop {
            let query = EventQuery { after: last, limit: PAGE, ..Default::default() };
            match store.list_events(query).await {
                Ok(page) => {
                    let full = page.len() == PAGE as usize;
                    for event in page {
                        last = Some(event.id);
                        // No subscriber is fine: the log has it.
                        let _ = sender.send(event);
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the event log");
                    break;
                }
            }
        }
        drop(reading);
        if stop.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventFilter {
    /// Only this organization's events (the subscriber's, unless it is the operator).
    pub org_id: Option<OrgId>,
    /// Only these sessions' events (a key limited to them).
    pub sessions: Option<Vec<SessionId>>,
    pub session_id: Option<SessionId>,
    /// Empty: every type.
    pub types: Vec<EventType>,
}

impl EventFilter {
    fn wants(&self, event: &Event) -> bool {
        let org_ok = self.org_id.as_ref().is_none_or(|org| event.org_id.as_ref() == Some(org));
        let sessions_ok = self
            .sessions
            .as_ref()
            .is_none_or(|allowed| event.session_id.as_ref().is_some_and(|s| allowed.contains(s)));
        let session_ok = match &self.session_id {
            Some(id) => event.session_id.as_ref() == Some(id),
            None => true,
        };
        org_ok && sessions_ok && session_ok && (self.types.is_empty() || self.types.contains(&event.kind()))
    }
}

/// Why a subscription ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamEnd {
    #[error("slow consumer: fell more than {0} events behind; reconnect with the last event id to resume")]
    SlowConsumer(usize),
    #[error("the server is shutting down; reconnect with the last event id to resume")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One subscriber's view of the log: what it missed first, then the live feed.
pub(crate) struct Subscription {
    store: Arc<dyn Store>,
    filter: EventFilter,
    live: broadcast::Receiver<Event>,
    buffer: usize,
    /// The last event handed out (or skipped as already seen).
    last: Option<EventId>,
    backlog: VecDeque<Event>,
    caught_up: bool,
    /// Whether the feed has handed out an event since the last catch-up from the log.
    following: bool,
}

impl Subscription {
    /// Follows events after `after`, or from now when `after` is None.
    pub(super) async fn new(
        store: Arc<dyn Store>,
        live: broadcast::Receiver<Event>,
        buffer: usize,
        filter: EventFilter,
        after: Option<EventId>,
    ) -> Result<Self, StoreError> {
        // Subscribed to the feed first: whatever the log read below misses, the feed carries.
        let last = match after {
            Some(after) => Some(after),
            None => store.last_event_id().await?,
        };
        Ok(Self {
            store,
            filter,
            live,
            buffer,
            last,
            backlog: VecDeque::new(),
            caught_up: false,
            following: false,
        })
    }

    /// The next event the subscriber wants, in log order.
    pub(crate) async fn next(&mut self) -> Result<Event, StreamEnd> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.last = Some(event.id);
                return Ok(event);
            }
            if !self.caught_up {
                let query = EventQuery {
                    after: self.last,
                    org_id: self.filter.org_id.clone(),
                    session_id: self.filter.session_id.clone(),
                    sessions: self.filter.sessions.clone(),
                    types: self.filter.types.clone(),
                    limit: PAGE,
                };
                let page = self.store.list_events(query).await?;
                self.caught_up = page.len() < PAGE as usize;
                self.backlog.extend(page);
                continue;
            }
            match self.live.recv().await {
                Ok(event) if self.last.is_some_and(|last| event.id <= last) => {}
                Ok(event) => {
                    self.following = true;
                    self.last = Some(event.id);
                    if self.filter.wants(&event) {
                        return Ok(event);
                    }
                }
                // Fell behind while following the feed: too slow for it.
                Err(broadcast::error::RecvError::Lagged(_)) if self.following => {
                    return Err(StreamEnd::SlowConsumer(self.buffer))
                }
                // Fell behind while reading a long backlog: read on from the log.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.live = self.live.resubscribe();
                    self.caught_up = false;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(StreamEnd::ShuttingDown),
            }
        }
    }
}
