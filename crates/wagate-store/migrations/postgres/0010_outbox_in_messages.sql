-- The outbox is a state of the message row, not a table of its own: a message waiting to be
-- sent has `due_at` (when it may be sent next); claiming it sets `locked_until` on the same
-- row, and its send result clears both. One row change per step instead of three.
ALTER TABLE messages ADD COLUMN due_at BIGINT;
ALTER TABLE messages ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN locked_until BIGINT;
-- 0 for a direct send, 1 for a campaign message: a session's direct sends go first.
ALTER TABLE messages ADD COLUMN bulk BIGINT NOT NULL DEFAULT 0;
-- 1 while the message's campaign is paused.
ALTER TABLE messages ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
UPDATE messages SET due_at = o.available_at, attempts = o.attempts, locked_until = o.locked_until,
    bulk = o.bulk, held = o.held
    FROM outbox o WHERE o.message_id = messages.id;
DROP TABLE outbox;
CREATE INDEX messages_queue ON messages (session_id, held, bulk, id) WHERE due_at IS NOT NULL;
