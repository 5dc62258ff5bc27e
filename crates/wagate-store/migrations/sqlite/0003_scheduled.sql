-- When a scheduled message is (or was) due to be sent; NULL for messages sent at once.
ALTER TABLE messages ADD COLUMN scheduled_at INTEGER;
