//! The cluster: nodes sharing one database, their heartbeats, the session leases they hold
//! (with fencing tokens) and the signals and commands they send each other.

use async_trait::async_trait;
use wagate_core::{NodeState, RemoteCommand, Session, SessionId, Signal, Timestamp};

use crate::StoreResult;

/// A node as it describes itself at each heartbeat.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: String,
    /// Where its API answers.
    pub address: String,
    pub version: String,
    /// `Active`, or `Draining` (taking no sessions, handing its own over).
    pub state: NodeState,
    pub max_sessions: u32,
    pub started_at: Timestamp,
}

/// A node as the cluster sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Node {
    pub id: String,
    pub address: String,
    pub version: String,
    /// `Dead` when it has had no heartbeat within the lease TTL.
    pub state: NodeState,
    pub max_sessions: u32,
    pub sessions: u64,
    pub started_at: Timestamp,
    pub last_heartbeat: Timestamp,
}

/// A session this node holds, with its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub session_id: SessionId,
    pub token: i64,
    /// What another node asked the owner to do, if anything.
    pub command: Option<RemoteCommand>,
}

/// What a heartbeat tells a node.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The sessions it holds.
    pub leases: Vec<Lease>,
    /// Its state as the cluster has it: `Draining` once anyone asked it to drain.
    pub state: NodeState,
}

/// One grant of a session's lease.
#[derive(Debug, Clone)]
pub struct LeaseGrant {
    pub node_id: String,
    pub token: i64,
    pub acquired_at: Timestamp,
}

/// Nodes and session leases.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Records a node's heartbeat and extends its leases to `until`; returns those it holds.
    async fn heartbeat(&self, node: &NodeInfo, now: Timestamp, until: Timestamp) -> StoreResult<Heartbeat>;
    /// Takes up to `limit` sessions that should run (connected by a user, not since
    /// disconnected) and that no node holds: never leased, released, or expired. With
    /// `restarted`, also those this node id held before it restarted. With `only`, that one
    /// session (being connected now), whether or not it should run yet. Each gets a new token.
    async fn acquire_sessions(
        &self,
        node_id: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
        restarted: bool,
        only: Option<&SessionId>,
    ) -> StoreResult<Vec<(Session, Lease)>>;
    /// Gives leases up so other nodes can take the sessions at once.
    async fn release_sessions(&self, node_id: &str, leases: &[Lease]) -> StoreResult<()>;
    /// Nodes, with `dead` for those silent since `dead_before`.
    async fn list_nodes(&self, dead_before: Timestamp) -> StoreResult<Vec<Node>>;
    /// Sessions that should run, and how many live (heartbeat since `live_since`) active nodes share them.
    async fn cluster_load(&self, live_since: Timestamp) -> StoreResult<(u64, u64)>;
    /// Sets a node's state; false when there is no such node.
    async fn set_node_state(&self, node_id: &str, state: NodeState) -> StoreResult<bool>;
    /// Asks the node holding a session to carry out `command`; returns that node, if any.
    /// (Only a live lease counts: a dead node's sessions are not waited for.)
    async fn request_command(
        &self,
        session_id: &SessionId,
        command: RemoteCommand,
        now: Timestamp,
    ) -> StoreResult<Option<String>>;
    /// Tells every node sharing the database something (PostgreSQL NOTIFY, one transaction for
    /// all of `signals`); nothing on SQLite.
    async fn signal(&self, signals: &[Signal]) -> StoreResult<()>;
    /// What other nodes signal, as it comes; `None` where there can be no other node.
    async fn listen(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Signal>>>;
    /// Every grant of a session's lease, oldest first.
    async fn lease_history(&self, session_id: &SessionId) -> StoreResult<Vec<LeaseGrant>>;
}
