-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    connector TEXT NOT NULL,
    name TEXT,
    config TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    status_reason TEXT,
    phone TEXT,
    jid TEXT,
    -- The connector's device credentials (JSON); NULL while the session is not linked.
    credentials TEXT,
    -- 1 while wagate should keep the session connected, across restarts.
    auto_connect INTEGER NOT NULL DEFAULT 0,
    last_connected_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    chat TEXT NOT NULL,
    sender TEXT,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    wa_id TEXT,
    idempotency_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_idempotency_key ON messages (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Inbound messages are deduplicated by WhatsApp's id; receipts find outbound ones by it.
CREATE UNIQUE INDEX messages_wa_id ON messages (session_id, direction, wa_id)
    WHERE wa_id IS NOT NULL;
CREATE INDEX messages_by_session ON messages (session_id, id);
CREATE INDEX messages_by_chat ON messages (session_id, chat, id);

CREATE TABLE message_status_history (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    reason TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX message_status_history_by_message ON message_status_history (message_id);

-- Outbound messages waiting to be sent. A row is claimed by setting locked_until; a claim
-- that outlives its lease (the node died mid-send) is claimed again.
CREATE TABLE outbox (
    message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    available_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
);
CREATE INDEX outbox_due ON outbox (session_id, available_at);

-- The append-only event log; seq is the event id.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_by_session ON events (session_id, seq);
