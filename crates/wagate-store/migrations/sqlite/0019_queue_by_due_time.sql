-- A claim takes a session's due messages, direct sends first, earliest due first. The queue
-- index ordered them by id, and ids grow with the time a message was accepted, so a claim read
-- past every message scheduled ahead (accepted earlier, due later) to reach the due ones: with
-- 50,000 scheduled for the next day, 50,064 rows and 47 ms a claim of 64. With due_at before id
-- a claim reads the rows it takes, and the next due time is the first row past now (0.75 ms).
DROP INDEX messages_queue;
CREATE INDEX messages_queue ON messages (session_id, held, bulk, due_at, id) WHERE due_at IS NOT NULL;
