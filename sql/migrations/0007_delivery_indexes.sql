-- Delivery: fewer index entries per delivery. A claim and an outcome each rewrite the queue row
-- outside HOT (status and next_attempt_at are indexed), so every index on delivery_queue gets a new
-- entry twice per delivery, and every delivery_log index once. Applies on top of 0001 alone.
SET LOCAL search_path TO alert_delivery, public;

-- alert_id is the leading column of the unique (alert_id, webhook_id, event, seq) index, which
-- serves every lookup and the foreign key's cascade this one did.
DROP INDEX IF EXISTS delivery_queue_alert;

-- message_id (the webhook-id) is unique by construction: gen_random_uuid(), 122 random bits, and
-- no writer sets it. Nothing looks a row up by it, and its index took a random-page entry on both
-- rewrites of every delivery: about 7 us of the server's ~45 us per delivery, measured.
ALTER TABLE delivery_queue DROP CONSTRAINT IF EXISTS delivery_queue_message_id_key;

-- The log is append-only in time order and only ever read by created_at ranges (exporter,
-- reports, 24-hour views): a BRIN index answers those and costs almost nothing to maintain,
-- where the btree took an entry per attempt. Per-webhook reads keep (webhook_id, created_at).
DROP INDEX IF EXISTS delivery_log_created;
CREATE INDEX delivery_log_created_brin ON delivery_log USING brin (created_at);
