//! This node's membership of the cluster: a heartbeat that renews the leases of the sessions
//! it runs, takes sessions nobody runs (up to its share), gives back those over its share,
//! stops those it lost, and carries out what other nodes ask of its sessions. On SQLite the
//! one node holds every session the same way.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use wagate_core::{NodeState, RemoteCommand, SessionId, Signal};
use wagate_store::{Lease, NodeInfo, StoreError};

use super::{Command, Engine};
use crate::config::{ms, NodeConfig};

/// How this node presents itself; `Draining` once it stops taking sessions.
pub(crate) struct Membership {
    pub(super) info: std::sync::Mutex<NodeInfo>,
    pub(super) config: NodeConfig,
    /// Run a heartbeat now (a session was connected, released, or asked something).
    pub(super) beat_now: Notify,
    /// Whether other nodes can share the database (they are heard from): only then is a
    /// session not running here worth a signal.
    pub(super) peers: std::sync::atomic::AtomicBool,
    /// Sessions on other nodes to wake, waiting for the next signal (`send_wakes`).
    wakes: parking_lot::Mutex<HashSet<SessionId>>,
    wakes_waiting: Notify,
}

impl Membership {
    pub(crate) fn new(
        engine_node_id: &str,
        address: String,
        config: NodeConfig,
        now: wagate_core::Timestamp,
    ) -> Self {
        let info = NodeInfo {
            id: engine_node_id.to_owned(),
            address,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            state: NodeState::Active,
            max_sessions: config.max_sessions.get(),
            started_at: now,
        };
        Self {
            info: std::sync::Mutex::new(info),
            config,
            beat_now: Notify::new(),
            peers: std::sync::atomic::AtomicBool::new(false),
            wakes: parking_lot::Mutex::default(),
            wakes_waiting: Notify::new(),
        }
    }

    pub(super) fn info(&self) -> NodeInfo {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn draining(&self) -> bool {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).state == NodeState::Draining
    }

    pub(super) fn set_draining(&self) {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).state = NodeState::Draining;
    }

    /// Wakes a session that runs on another node, with the next signal.
    pub(super) fn wake_elsewhere(&self, id: &SessionId) {
        if self.wakes.lock().insert(id.clone()) {
            self.wakes_waiting.notify_one();
        }
    }

    pub(super) fn ttl(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(i64::try_from(self.config.lease_ttl_ms).unwrap_or(i64::MAX))
    }
}

impl Engine {
    /// The heartbeat's period and the lease TTL, for listing nodes.
    pub(crate) fn lease_ttl(&self) -> chrono::Duration {
        self.membership.ttl()
    }

    /// One heartbeat: renew, stop what was lost, carry out requests, rebalance, take sessions.
    /// `restarted` on the first one, to take back what this node id held before a restart.
    pub(super) async fn beat(self: &Arc<Self>, restarted: bool) -> Result<usize, StoreError> {
        let membership = &self.membership;
        let now = self.now();
        let until = now + membership.ttl();
        // The tasks running before the heartbeat: each one's lease was committed before the
        // heartbeat read this node's leases. A task started meanwhile (a `connect` taking a
        // free session) has a lease the heartbeat may not have seen, and is not stopped for it.
        let running = self.running_here();
        let heartbeat = self.store.heartbeat(&membership.info(), now, until).await?;
        if heartbeat.state == NodeState::Draining && !membership.draining() {
            tracing::info!("asked to drain: handing sessions over");
            membership.set_draining();
        }

        // Sessions whose lease passed to another node: stop them without another write.
        let held: HashSet<(SessionId, i64)> =
            heartbeat.leases.iter().map(|l| (l.session_id.clone(), l.token)).collect();
        for (id, lease) in &running {
            if held.contains(&(id.clone(), *lease)) {
                continue;
            }
            // Only the task that held the lost lease: one started since holds a newer one.
            let task =
                self.slots.lock().get_mut(id).and_then(|slot| slot.task.take_if(|task| task.lease == *lease));
            if let Some(task) = task {
                tracing::warn!(session_id = %id, "lease lost to another node; stopping the session here");
                task.abort();
            }
        }

        // What other nodes asked of sessions here.
        for lease in &heartbeat.leases {
            let command = match lease.command {
                Some(RemoteCommand::Disconnect) => Command::Disconnect,
                Some(RemoteCommand::Logout) => Command::Logout,
                None => continue,
            };
            let engine = Arc::clone(self);
            let id = lease.session_id.clone();
            self.cluster.spawn(async move {
                engine.command(&id, command).await;
            });
        }

        if membership.draining() {
            self.hand_over(None, "node draining; moving to another node").await;
            return Ok(0);
        }
        let (wanted, nodes) = self.store.cluster_load(now - membership.ttl()).await?;
        let share = wanted.div_ceil(nodes.max(1)).min(u64::from(membership.config.max_sessions.get()));
        let mine = self.running_here().len() as u64;
        if mine > share {
            // Over its share (a node joined): give some back for the others to take.
            self.hand_over(Some((mine - share) as usize), "moving to another node to spread the load").await;
            return Ok(0);
        }
        let limit = share.saturating_sub(mine);
        if limit == 0 {
            return Ok(0);
        }
        let taken = self
            .store
            .acquire_sessions(
                &membership.info().id,
                now,
                until,
                u32::try_from(limit).unwrap_or(u32::MAX),
                restarted,
                None,
            )
            .await?;
        let count = taken.len();
        for (session, lease) in taken {
            let Some(connector) = self.connectors.get(&session.connector).cloned() else {
                tracing::warn!(session_id = %session.id, connector = session.connector.as_str(), "connector unavailable here; giving the session back");
                let _ = self.store.release_sessions(&membership.info().id, &[lease]).await;
                continue;
            };
            self.spawn_session(session, lease.token, connector, None);
        }
        Ok(count)
    }

    /// Closes `count` sessions (all with `None`) and gives their leases back, so other nodes
    /// take them at once. Sends in flight finish first.
    pub(super) async fn hand_over(self: &Arc<Self>, count: Option<usize>, reason: &'static str) {
        let mut ids: Vec<SessionId> = self.running_here().into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids.truncate(count.unwrap_or(ids.len()));
        for id in &ids {
            self.command(id, Command::Shutdown(reason)).await;
        }
        if !ids.is_empty() {
            let _ = self.store.signal(&[Signal::Beat]).await;
        }
    }

    /// Gives a finished session's lease back.
    pub(super) async fn release(&self, lease: Lease) {
        let node = self.membership.info().id;
        if let Err(e) = self.store.release_sessions(&node, &[lease]).await {
            tracing::warn!(error = %e, "could not release a session's lease");
        }
    }

    /// Runs heartbeats until the engine shuts down, also at once when asked locally or by
    /// another node.
    pub(crate) fn start_heartbeat(self: &Arc<Self>, signals: Option<mpsc::UnboundedReceiver<Signal>>) {
        let engine = Arc::clone(self);
        let interval = ms(self.membership.config.heartbeat_ms);
        let stop = self.cluster.stopping();
        if let Some(signals) = signals {
            self.membership.peers.store(true, std::sync::atomic::Ordering::Relaxed);
            self.cluster.spawn(Arc::clone(self).follow_signals(signals, stop.clone()));
            self.cluster.spawn(Arc::clone(self).send_wakes(stop.clone()));
        }
        self.cluster.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = engine.membership.beat_now.notified() => {}
                    () = stop.cancelled() => return,
                }
                if let Err(e) = engine.beat(false).await {
                    tracing::error!(error = %e, "heartbeat failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
    }

    /// Sends the wakes for other nodes' sessions, all that wait in one signal: one at a time
    /// in flight, so a burst of sends through this node costs a few notifications, not one per
    /// message (each notifying commit takes a lock the whole database server shares).
    async fn send_wakes(self: Arc<Self>, stop: CancellationToken) {
        while stop.run_until_cancelled(self.membership.wakes_waiting.notified()).await.is_some() {
            let wakes: Vec<Signal> =
                std::mem::take(&mut *self.membership.wakes.lock()).into_iter().map(Signal::Wake).collect();
            if let Err(e) = self.store.signal(&wakes).await {
                // The nodes running them find the work at their next poll.
                tracing::warn!(error = %e, "could not wake sessions on other nodes");
            }
        }
    }

    /// Acts on other nodes' signals: work queued for a session here, a reason to beat now,
    /// events to read, or a session deleted.
    async fn follow_signals(
        self: Arc<Self>,
        mut signals: mpsc::UnboundedReceiver<Signal>,
        stop: CancellationToken,
    ) {
        while let Some(signal) = stop.run_until_cancelled(signals.recv()).await.flatten() {
            match signal {
                Signal::Wake(id) => {
                    self.wake_local(&id);
                }
                Signal::Beat => self.membership.beat_now.notify_one(),
                Signal::Events => self.live.wake(),
                Signal::Deleted(id) => self.owners.forget_session(&id),
            }
        }
    }
}
