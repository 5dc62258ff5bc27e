-- The same schema as SQLite's migrations end with, in one step. Times are milliseconds since
-- the Unix epoch (UTC); JSON is kept as text, as on SQLite, so both stores run the same SQL.

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
    -- While wagate should keep the session connected, across restarts.
    auto_connect BOOLEAN NOT NULL DEFAULT FALSE,
    last_connected_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
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
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- When a scheduled message is (or was) due to be sent; NULL for messages sent at once.
    scheduled_at BIGINT,
    campaign_id TEXT,
    sent_at BIGINT,
    -- The message a message replies to ({"message_id","wa_id"} JSON) and the JIDs it mentions (JSON array).
    context TEXT,
    mentions TEXT
);
CREATE UNIQUE INDEX messages_idempotency_key ON messages (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Inbound messages are deduplicated by WhatsApp's id; receipts find outbound ones by it.
CREATE UNIQUE INDEX messages_wa_id ON messages (session_id, direction, wa_id)
    WHERE wa_id IS NOT NULL;
CREATE INDEX messages_by_session ON messages (session_id, id);
CREATE INDEX messages_by_chat ON messages (session_id, chat, id);
CREATE INDEX messages_by_campaign ON messages (campaign_id, status, id) WHERE campaign_id IS NOT NULL;
CREATE INDEX messages_sent ON messages (session_id, sent_at) WHERE sent_at IS NOT NULL;

CREATE TABLE message_status_history (
    -- Named like SQLite's implicit row id, which orders a message's history there.
    rowid BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX message_status_history_by_message ON message_status_history (message_id);

-- Outbound messages waiting to be sent. A row is claimed by setting locked_until; a claim
-- that outlives its lease (the node died mid-send) is claimed again.
CREATE TABLE outbox (
    message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    available_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    recipient TEXT NOT NULL DEFAULT '',
    campaign_id TEXT,
    -- 0 for a direct send, 1 for a campaign message: a session's direct sends go first.
    bulk BIGINT NOT NULL DEFAULT 0,
    -- 1 while the message's campaign is paused.
    held BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_queue ON outbox (session_id, held, bulk, message_id);
CREATE INDEX outbox_by_campaign ON outbox (campaign_id) WHERE campaign_id IS NOT NULL;

-- The append-only event log; seq is the event id, taken from event_counter in commit order.
CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    type TEXT NOT NULL,
    session_id TEXT,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_by_session ON events (session_id, seq);
CREATE INDEX events_by_time ON events (created_at);
-- The last event number taken (one row), so numbers are never reused.
CREATE TABLE event_counter (last BIGINT NOT NULL);
INSERT INTO event_counter (last) VALUES (0);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    -- JSON array of filters: exact event types, `prefix.*` or `*`.
    events TEXT NOT NULL,
    -- Only this session's events when set.
    session_id TEXT,
    description TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    secret TEXT NOT NULL,
    -- The secret before the last rotation, still signing until previous_secret_until.
    previous_secret TEXT,
    previous_secret_until BIGINT,
    -- Since when every attempt has failed (NULL after a success).
    failing_since BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per event to hand to one webhook. A pending row is due at next_attempt_at; a
-- claimed row has next_attempt_at pushed to the end of its lease, so an attempt cut short by
-- a crash is made again once the lease runs out.
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (webhook_id, status, id);

CREATE TABLE webhook_attempts (
    rowid BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    -- The first 4 KiB of the receiver's answer.
    response TEXT,
    error TEXT
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id);

-- Message templates: a message body with {{var}} placeholders, sent by name.
CREATE TABLE templates (
    name TEXT PRIMARY KEY,
    language TEXT,
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Trigger hooks: a secret URL that sends to fixed recipients without an API key. Only the
-- SHA-256 of the URL's token is kept.
CREATE TABLE hooks (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    recipients TEXT NOT NULL,
    template TEXT,
    description TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX hooks_by_session ON hooks (session_id, id);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- running, paused, canceled or completed
    state TEXT NOT NULL,
    template TEXT,
    -- The body as given, placeholders and all.
    content TEXT NOT NULL,
    scheduled_at BIGINT,
    total BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX campaigns_by_session ON campaigns (session_id, id);

-- Media files; the bytes live in the media store (a directory or S3), under the id.
CREATE TABLE media (
    id TEXT PRIMARY KEY,
    mime_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    filename TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX media_by_age ON media (created_at);
