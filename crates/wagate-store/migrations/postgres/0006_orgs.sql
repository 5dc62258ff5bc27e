-- Organizations (tenants), their API keys and the audit log. Everything that existed before
-- moves to the `default` organization, so a single-tenant install never notices.
-- As on SQLite, organization ids are not foreign keys; the store refuses to delete an
-- organization that still holds anything.

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- Quotas; NULL is unlimited.
    max_sessions BIGINT,
    max_messages_per_day BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO orgs (id, name, created_at, updated_at)
    VALUES ('default', 'Default', (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT,
            (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT);

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
ALTER TABLE templates ADD COLUMN org_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE templates DROP CONSTRAINT templates_pkey;
ALTER TABLE templates ADD PRIMARY KEY (org_id, name);

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
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_org ON api_keys (org_id, id);

-- Who changed what, and every refused authentication. Never bodies or secrets.
CREATE TABLE audit_log (
    seq BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
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
    status BIGINT NOT NULL
);
CREATE INDEX audit_log_by_org ON audit_log (org_id, seq);
CREATE INDEX audit_log_by_time ON audit_log (at);
