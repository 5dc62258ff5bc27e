-- Retention. An event's deliveries are found by the event (an event is kept while one of
-- them is pending, and its finished ones are deleted with it). `expired_through` is the
-- newest event retention deleted: a reader resuming after an older id has missed events.
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_seq);
CREATE TABLE event_retention (expired_through INTEGER NOT NULL);
INSERT INTO event_retention (expired_through) VALUES (0);
