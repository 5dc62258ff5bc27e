-- Events are numbered after they commit, not while their writer holds a cluster-wide lock.
-- A writer inserts its events with seq NULL; the sequencer (one at a time, serialized by the
-- event_counter row) numbers committed rows in pk order and queues their webhook deliveries.
-- Readers read `seq > cursor` only, so an event committed late is numbered late and never
-- skipped. Rows written under the old lock keep their numbers, so clients' cursors stay valid.
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ALTER COLUMN seq DROP NOT NULL;
ALTER TABLE events ADD COLUMN pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
ALTER TABLE events ADD CONSTRAINT events_seq_key UNIQUE (seq);
CREATE INDEX events_unsequenced ON events (pk) WHERE seq IS NULL;
