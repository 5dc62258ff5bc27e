-- The events not numbered yet are kept in a small table of their own, which the sequencer
-- empties as it numbers them. Until now the sequencer found them through a partial index of
-- `events` (`seq IS NULL`); each numbered event left a dead entry in it until vacuum passed
-- over the whole events table, which at 20 % of a large table is rare. Every sequencer turn,
-- and every event page read after one, walked those entries: with a million events in the
-- table, about 2,700 index pages per look. This table stays small: the sequencer vacuums it
-- every 10,000 events, autovacuum whenever it has lost a thousand rows, and neither ever
-- shortens it (that would lock out writers for a moment).
CREATE TABLE events_pending (pk BIGINT PRIMARY KEY)
    WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, vacuum_truncate = false);

-- Every insert into `events`, by any writer (a node of an earlier version during an upgrade
-- included), lists its new rows here in the same statement.
CREATE FUNCTION events_pending_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events_pending (pk) SELECT pk FROM appended;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_pending_add AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION events_pending_add();

INSERT INTO events_pending (pk) SELECT pk FROM events WHERE seq IS NULL;
DROP INDEX events_unsequenced;
