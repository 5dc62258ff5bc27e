-- Nodes sharing the database, and which node runs each session. A lease is held while its
-- node renews it before expires_at; its token grows with every new owner, so a stale owner's
-- writes can be recognised and refused.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    -- active or draining (dead is derived from an old heartbeat)
    state TEXT NOT NULL,
    max_sessions INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE session_leases (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- What another node asked the owner to do: disconnect or logout.
    command TEXT
);
CREATE INDEX session_leases_by_node ON session_leases (node_id);

-- Every lease ever granted: who held which session from when.
CREATE TABLE lease_history (
    session_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    token INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
);
CREATE INDEX lease_history_by_session ON lease_history (session_id, token);
