-- Bulk campaigns, and what pacing needs: when each message was sent, and a queue that serves
-- direct sends before campaign messages and can hold a paused campaign's messages.

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- running, paused, canceled or completed
    state TEXT NOT NULL,
    template TEXT,
    -- The body as given, placeholders and all.
    content TEXT NOT NULL,
    scheduled_at INTEGER,
    total INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX campaigns_by_session ON campaigns (session_id, id);

ALTER TABLE messages ADD COLUMN campaign_id TEXT;
CREATE INDEX messages_by_campaign ON messages (campaign_id, status, id) WHERE campaign_id IS NOT NULL;
ALTER TABLE messages ADD COLUMN sent_at INTEGER;
CREATE INDEX messages_sent ON messages (session_id, sent_at) WHERE sent_at IS NOT NULL;
UPDATE messages SET sent_at = updated_at
    WHERE direction = 'out' AND status IN ('sent', 'delivered', 'read');

ALTER TABLE outbox ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
UPDATE outbox SET recipient = (SELECT recipient FROM messages WHERE messages.id = outbox.message_id);
ALTER TABLE outbox ADD COLUMN campaign_id TEXT;
-- 0 for a direct send, 1 for a campaign message: a session's direct sends go first.
ALTER TABLE outbox ADD COLUMN bulk INTEGER NOT NULL DEFAULT 0;
-- 1 while the message's campaign is paused.
ALTER TABLE outbox ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
DROP INDEX outbox_due;
CREATE INDEX outbox_queue ON outbox (session_id, held, bulk, message_id);
CREATE INDEX outbox_by_campaign ON outbox (campaign_id) WHERE campaign_id IS NOT NULL;
