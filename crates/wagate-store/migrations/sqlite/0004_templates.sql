-- Message templates: a message body with {{var}} placeholders, sent by name.
CREATE TABLE templates (
    name TEXT PRIMARY KEY,
    language TEXT,
    -- JSON: a message body as a send takes it ({"type":"text","text":{"body":"Hi {{name}}"}}).
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
