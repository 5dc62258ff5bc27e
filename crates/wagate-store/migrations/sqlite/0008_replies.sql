-- The message a message replies to ({"message_id","wa_id"} JSON) and the JIDs it mentions (JSON array).
ALTER TABLE messages ADD COLUMN context TEXT;
ALTER TABLE messages ADD COLUMN mentions TEXT;
