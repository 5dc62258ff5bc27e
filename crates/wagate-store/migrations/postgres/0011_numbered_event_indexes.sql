-- An event is inserted without a number and numbered by the sequencer once committed, which
-- rewrites its row. Indexes that only numbered events are read through (by number, by
-- organization, by session, by time for replays) now leave the unnumbered row out: each event
-- enters them once, when it is numbered, instead of twice. Every query on them asks for
-- numbered events (`seq > …`, `seq IN …`, `seq IS NOT NULL`), so they stay usable.
ALTER TABLE events DROP CONSTRAINT events_seq_key;
CREATE UNIQUE INDEX events_seq_key ON events (seq) WHERE seq IS NOT NULL;
DROP INDEX events_by_org;
CREATE INDEX events_by_org ON events (org_id, seq) WHERE seq IS NOT NULL;
DROP INDEX events_by_session;
CREATE INDEX events_by_session ON events (session_id, seq) WHERE seq IS NOT NULL;
DROP INDEX events_by_time;
CREATE INDEX events_by_time ON events (created_at) WHERE seq IS NOT NULL;
