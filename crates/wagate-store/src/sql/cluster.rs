//! Nodes and session leases: which node runs each session, renewed by heartbeat.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use wagate_core::{NodeState, RemoteCommand, Session, SessionId, Signal, Timestamp};

use super::{begin, from_millis, millis, sessions, Backend, Db, DbConn};
use crate::{Cluster, Heartbeat, Lease, LeaseGrant, Node, NodeInfo, StoreResult};

fn lease_from_row(row: &<Db as sqlx::Database>::Row) -> StoreResult<Lease> {
    let id: String = row.try_get("session_id")?;
    let command: Option<String> = row.try_get("command")?;
    Ok(Lease {
        session_id: SessionId::parse(&id).map_err(|_| super::corrupt("session id", &id))?,
        token: row.try_get("token")?,
        command: command
            .map(|c| c.parse::<RemoteCommand>().map_err(|_| super::corrupt("lease command", &c)))
            .transpose()?,
    })
}

fn node_state(state: &str) -> StoreResult<NodeState> {
    state.parse().map_err(|_| super::corrupt("node state", state))
}

#[async_trait]
impl Cluster for Backend {
    async fn heartbeat(&self, node: &NodeInfo, now: Timestamp, until: Timestamp) -> StoreResult<Heartbeat> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        // A drain asked for by anyone sticks until the node starts again.
        let state: String = sqlx::query_scalar(
            "INSERT INTO nodes (id, address, version, state, max_sessions, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET address = $2, version = $3, \
             state = CASE WHEN nodes.state = 'draining' AND nodes.started_at = $6 THEN 'draining' ELSE $4 END, \
             max_sessions = $5, started_at = $6, heartbeat_at = $7 RETURNING state",
        )
        .bind(&node.id)
        .bind(&node.address)
        .bind(&node.version)
        .bind(node.state.to_string())
        .bind(i64::from(node.max_sessions))
        .bind(millis(node.started_at))
        .bind(millis(now))
        .fetch_one(&mut *tx)
        .await?;
        // A lease that ran out is renewed too while nobody took it: the token says it is ours.
        let rows = sqlx::query(
            "UPDATE session_leases SET expires_at = $1 WHERE node_id = $2 RETURNING session_id, token, command",
        )
        .bind(millis(until))
        .bind(&node.id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Heartbeat {
            leases: rows.iter().map(lease_from_row).collect::<StoreResult<_>>()?,
            state: node_state(&state)?,
        })
    }

    async fn acquire_sessions(
        &self,
        node_id: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
        restarted: bool,
        only: Option<&SessionId>,
    ) -> StoreResult<Vec<(Session, Lease)>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        let mut sql = QueryBuilder::<Db>::new(
            "SELECT s.id FROM sessions s LEFT JOIN session_leases l ON l.session_id = s.id WHERE ",
        );
        match only {
            Some(id) => sql.push("s.id = ").push_bind(id.as_str()),
            None => sql.push("s.auto_connect"),
        };
        sql.push(" AND (l.session_id IS NULL OR l.expires_at <= ").push_bind(millis(now));
        if restarted || only.is_some() {
            sql.push(" OR l.node_id = ").push_bind(node_id);
        }
        sql.push(") ORDER BY s.id LIMIT ").push_bind(i64::from(limit));
        let ids: Vec<String> = sql.build_query_scalar().fetch_all(&mut *tx).await?;
        let mut taken = Vec::with_capacity(ids.len());
        for id in ids {
            // Taken only if still free when its row is locked: another node may have taken it
            // since the query above read it.
            let token: Option<i64> = sqlx::query_scalar(
                "INSERT INTO session_leases (session_id, node_id, token, expires_at) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (session_id) DO UPDATE SET node_id = $2, token = session_leases.token + 1, \
                 expires_at = $3, command = NULL \
                 WHERE session_leases.expires_at <= $4 OR ($5 AND session_leases.node_id = $2) RETURNING token",
            )
            .bind(&id)
            .bind(node_id)
            .bind(millis(until))
            .bind(millis(now))
            .bind(restarted || only.is_some())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(token) = token else { continue };
            sqlx::query(
                "INSERT INTO lease_history (session_id, node_id, token, acquired_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(node_id)
            .bind(token)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
            let session_id = SessionId::parse(&id).map_err(|_| super::corrupt("session id", &id))?;
            if let Some(session) = sessions::fetch(&mut tx, self.keyring(), &session_id).await? {
                taken.push((session, Lease { session_id, token, command: None }));
            }
        }
        tx.commit().await?;
        Ok(taken)
    }

    async fn release_sessions(&self, node_id: &str, leases: &[Lease]) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        for lease in leases {
            // The row stays, held by nobody, so the next owner's token still counts on from it.
            sqlx::query(
                "UPDATE session_leases SET node_id = '', expires_at = 0, command = NULL \
                 WHERE session_id = $1 AND node_id = $2 AND token = $3",
            )
            .bind(lease.session_id.as_str())
            .bind(node_id)
            .bind(lease.token)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_nodes(&self, dead_before: Timestamp) -> StoreResult<Vec<Node>> {
        let pool = self.readers();
        let rows = sqlx::query(
            "SELECT n.id, n.address, n.version, n.state, n.max_sessions, n.started_at, n.heartbeat_at, \
             (SELECT COUNT(*) FROM session_leases l WHERE l.node_id = n.id) AS sessions FROM nodes n ORDER BY n.id",
        )
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                let heartbeat = from_millis(row.try_get("heartbeat_at")?)?;
                let state: String = row.try_get("state")?;
                Ok(Node {
                    id: row.try_get("id")?,
                    address: row.try_get("address")?,
                    version: row.try_get("version")?,
                    state: if heartbeat < dead_before { NodeState::Dead } else { node_state(&state)? },
                    max_sessions: u32::try_from(row.try_get::<i64, _>("max_sessions")?).unwrap_or(u32::MAX),
                    sessions: u64::try_from(row.try_get::<i64, _>("sessions")?).unwrap_or(0),
                    started_at: from_millis(row.try_get("started_at")?)?,
                    last_heartbeat: heartbeat,
                })
            })
            .collect()
    }

    async fn cluster_load(&self, live_since: Timestamp) -> StoreResult<(u64, u64)> {
        let pool = self.readers();
        let (wanted, nodes): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM sessions WHERE auto_connect), \
             (SELECT COUNT(*) FROM nodes WHERE state = 'active' AND heartbeat_at >= $1)",
        )
        .bind(millis(live_since))
        .fetch_one(pool)
        .await?;
        Ok((u64::try_from(wanted).unwrap_or(0), u64::try_from(nodes).unwrap_or(0)))
    }

    async fn set_node_state(&self, node_id: &str, state: NodeState) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let done = sqlx::query("UPDATE nodes SET state = $1 WHERE id = $2")
            .bind(state.to_string())
            .bind(node_id)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn request_command(
        &self,
        session_id: &SessionId,
        command: RemoteCommand,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        let owner: Option<String> = sqlx::query_scalar(
            "UPDATE session_leases SET command = $1 WHERE session_id = $2 AND expires_at > $3 RETURNING node_id",
        )
        .bind(command.to_string())
        .bind(session_id.as_str())
        .bind(millis(now))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(owner)
    }

    async fn lease_history(&self, session_id: &SessionId) -> StoreResult<Vec<LeaseGrant>> {
        let pool = self.readers();
        let rows = sqlx::query(
            "SELECT node_id, token, acquired_at FROM lease_history WHERE session_id = $1 ORDER BY token",
        )
        .bind(session_id.as_str())
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LeaseGrant {
                    node_id: row.try_get("node_id")?,
                    token: row.try_get("token")?,
                    acquired_at: from_millis(row.try_get("acquired_at")?)?,
                })
            })
            .collect()
    }

    async fn signal(&self, signals: &[Signal]) -> StoreResult<()> {
        if signals.is_empty() {
            return Ok(());
        }
        self.send_signals(signals.iter().map(Signal::to_string).collect()).await
    }

    async fn listen(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Signal>>> {
        self.signals().await
    }
}
