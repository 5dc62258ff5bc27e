-- Trigger hooks: a secret URL that sends to fixed recipients without an API key. Only the
-- SHA-256 of the URL's token is kept.
CREATE TABLE hooks (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    -- JSON array of recipients.
    recipients TEXT NOT NULL,
    template TEXT,
    description TEXT,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX hooks_by_session ON hooks (session_id, id);
