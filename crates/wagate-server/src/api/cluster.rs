//! The nodes sharing the database: which are alive, how many sessions each runs, and
//! draining one before it is stopped.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use wagate_core::{NodeState, Timestamp};

use super::openapi::{ApiKeyRequired, ErrorBody};
use super::{ApiError, ErrorCode};
use crate::auth::{scope, Caller};
use crate::AppState;

/// A node of the cluster.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "node-1", "address": "10.0.0.5:8080", "version": "0.1.0", "state": "active",
    "sessions": 120, "max_sessions": 10000, "started_at": "2026-11-23T10:00:00Z", "last_heartbeat": "2026-11-23T11:00:00Z"}))]
pub(super) struct NodeView {
    pub id: String,
    /// Where its API answers.
    pub address: String,
    pub version: String,
    /// `active`, `draining` (takes no sessions, hands its own over) or `dead` (no heartbeat
    /// within the lease TTL; its sessions move to other nodes).
    pub state: NodeState,
    /// Sessions it holds.
    pub sessions: u64,
    /// `node.max_sessions`.
    pub max_sessions: u32,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_heartbeat: Timestamp,
}

#[derive(Serialize, ToSchema)]
pub(super) struct NodeList {
    pub data: Vec<NodeView>,
}

#[utoipa::path(operation_id = "cluster_nodes", get, path = "/cluster/nodes", tag = "cluster",
    responses((status = 200, body = NodeList, description = "Every node that has run on this database, by id"),
        ApiKeyRequired))]
pub(super) async fn nodes(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
) -> Result<Json<NodeList>, ApiError> {
    Ok(Json(node_list(&state).await?))
}

async fn node_list(state: &AppState) -> Result<NodeList, ApiError> {
    let dead_before = state.engine.now() - state.engine.lease_ttl();
    let nodes = state.engine.store().list_nodes(dead_before).await?;
    let data = nodes
        .into_iter()
        .map(|n| NodeView {
            id: n.id,
            address: n.address,
            version: n.version,
            state: n.state,
            sessions: n.sessions,
            max_sessions: n.max_sessions,
            started_at: n.started_at,
            last_heartbeat: n.last_heartbeat,
        })
        .collect();
    Ok(NodeList { data })
}

#[utoipa::path(operation_id = "cluster_drain", post, path = "/cluster/nodes/{node_id}/drain", tag = "cluster",
    params(("node_id" = String, Path, description = "Node id")),
    responses((status = 202, body = NodeList, description = "Draining: the node takes no more sessions and hands its own over (at its next heartbeat when it is another node); it keeps answering API calls"),
        ApiKeyRequired,
        (status = 404, description = "No such node", body = ErrorBody)))]
pub(super) async fn drain(
    State(state): State<AppState>,
    _caller: Caller<scope::Operator>,
    Path(node_id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<NodeList>), ApiError> {
    if !state.engine.drain_node(&node_id).await? {
        return Err(ApiError::not_found(ErrorCode::NodeNotFound, format!("no node {node_id}")));
    }
    Ok((axum::http::StatusCode::ACCEPTED, Json(node_list(&state).await?)))
}
