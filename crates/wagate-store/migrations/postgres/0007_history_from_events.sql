-- A message's status history is its events: each status change appends exactly one event in
-- the same transaction, so a separate history table wrote every step twice. Events about a
-- message name it; the steps no event recorded (a campaign's messages are created and
-- canceled in bulk) are read from the message row itself.
ALTER TABLE events ADD COLUMN message_id TEXT;
UPDATE events SET message_id = CAST(data AS jsonb) ->> 'message_id' WHERE type = 'message.status';
UPDATE events SET message_id = CAST(data AS jsonb) ->> 'id' WHERE type = 'message.received';
CREATE INDEX events_by_message ON events (message_id) WHERE message_id IS NOT NULL;
DROP TABLE message_status_history;
