-- A webhook's claim takes its oldest due deliveries in (next_attempt_at, id) order. The index
-- held next_attempt_at only, so every claim read and sorted all of the webhook's due
-- deliveries to keep 32 of them: 5,800 rows, 8 ms, in a benchmark's backlog, and more for a
-- webhook that was down for a day. With id in the index, a claim reads the rows it takes.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at, id)
    WHERE status = 'pending';
