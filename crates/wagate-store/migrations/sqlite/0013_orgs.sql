-- Organizations (tenants), their API keys and the audit log. Everything that existed before
-- moves to the `default` organization, so a single-tenant install never notices.
-- Organization ids are not foreign keys here: SQLite cannot add a REFERENCES column with a
-- default; the store refuses to delete an organization that still holds anything.

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- Quotas; NULL is unlimited.
    max_sessions INTEGER,
    max_messages_per_day INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO orgs (id, name, created_at, updated_at)
    VALUES ('default', 'Default', CAST(strftime('%s', 'now') AS INTEGER) * 1000,
            CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- A session's messages, contacts, trigger hooks and campaigns belong to its organization.
ALTER TABLE sessions ADD COLUMN org_id TEXT NOT NULL DEFAULT 'default';
CREATE INDEX sessions_by_org ON sessions (org_id, id);
ALTER TABLE webhooks ADD COLUMN org_id TEXT NOT NULL DEFAULT 'default';
CREATE INDEX webhooks_by_org ON webhooks (org_id, id);
ALTER TABLE media ADD COLUMN org_id TEXT NOT NULL DEFAULT 'default';
-- The organization an event belongs to (its session's, or its webhook's), stamped when it
-- is appended so that a session id reused by another organization never shows it old events.
ALTER TABLE events ADD COLUMN org_id TEXT;
UPDATE events SET org_id = 'default';
CREATE INDEX events_by_org ON events (org_id, seq);

-- Template names are unique within an organization.
CREATE TABLE templates_v2 (
    org_id TEXT NOT NULL DEFAULT 'default',
    name TEXT NOT NULL,
    language TEXT,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, name)
);
INSERT INTO templates_v2 (org_id, name, language, content, created_at, updated_at)
    SELECT 'default', name, language, content, created_at, updated_at FROM templates;
DROP TABLE templates;
ALTER TABLE templates_v2 RENAME TO templates;

-- API keys of an organization. Only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON array of scope names.
    scopes TEXT NOT NULL,
    -- JSON array of session ids the key is limited to; NULL for every session of its organization.
    sessions TEXT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_keys_by_org ON api_keys (org_id, id);

-- Who changed what, and every refused authentication. Never bodies or secrets.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    request_id TEXT,
    -- admin, key, jwt or anonymous (a refused authentication)
    actor_kind TEXT NOT NULL,
    -- The key id or the JWT subject.
    actor_id TEXT,
    org_id TEXT,
    source TEXT,
    method TEXT NOT NULL,
    -- The route template (`/v1/sessions/{id}`), never the raw path.
    route TEXT NOT NULL,
    -- JSON object of the route's ids.
    target TEXT NOT NULL DEFAULT '{}',
    status INTEGER NOT NULL
);
CREATE INDEX audit_log_by_org ON audit_log (org_id, seq);
CREATE INDEX audit_log_by_time ON audit_log (at);
