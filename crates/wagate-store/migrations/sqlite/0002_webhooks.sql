-- Webhooks and their deliveries. Events that belong to no session (webhook.disabled) have
-- no session id, so the event log is rebuilt with a nullable session_id.

CREATE TABLE events_v2 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    session_id TEXT,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
INSERT INTO events_v2 (seq, type, session_id, created_at, data)
    SELECT seq, type, session_id, created_at, data FROM events;
-- Ids are never reused: the new table goes on from where the old one's sequence stood.
DELETE FROM sqlite_sequence WHERE name = 'events_v2';
INSERT INTO sqlite_sequence (name, seq) SELECT 'events_v2', seq FROM sqlite_sequence WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE INDEX events_by_session ON events (session_id, seq);
CREATE INDEX events_by_time ON events (created_at);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    -- JSON array of filters: exact event types, `prefix.*` or `*`.
    events TEXT NOT NULL,
    -- Only this session's events when set.
    session_id TEXT,
    description TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    secret TEXT NOT NULL,
    -- The secret before the last rotation, still signing until previous_secret_until.
    previous_secret TEXT,
    previous_secret_until INTEGER,
    -- Since when every attempt has failed (NULL after a success).
    failing_since INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row per event to hand to one webhook. A pending row is due at next_attempt_at; a
-- claimed row has next_attempt_at pushed to the end of its lease, so an attempt cut short by
-- a crash is made again once the lease runs out.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (webhook_id, status, id);

CREATE TABLE webhook_attempts (
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    status_code INTEGER,
    latency_ms INTEGER NOT NULL,
    -- The first 4 KiB of the receiver's answer.
    response TEXT,
    error TEXT
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id);
