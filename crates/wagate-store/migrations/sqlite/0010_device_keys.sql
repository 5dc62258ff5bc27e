-- What a connector keeps for a session's device (the web connector's Signal keys, app state
-- and protocol caches), as opaque values in namespaces (`kind`). Deleting the session deletes them.
CREATE TABLE device_keys (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    -- A number the kind gives meaning to: a flag, or a time after which the row may go.
    number INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, kind, key)
);

-- Who a session has talked to or learned of (contact lists, history sync, messages).
CREATE TABLE contacts (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    jid TEXT NOT NULL,
    phone TEXT,
    lid TEXT,
    name TEXT,
    push_name TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, jid)
);

-- A session's conversations, newest activity first.
CREATE TABLE chats (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    jid TEXT NOT NULL,
    name TEXT,
    is_group INTEGER NOT NULL,
    last_message_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, jid)
);
CREATE INDEX chats_by_activity ON chats (session_id, last_message_at);

-- More about an inbound message's author (LID, profile name), as JSON.
ALTER TABLE messages ADD COLUMN sender_info TEXT;
