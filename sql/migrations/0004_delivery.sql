-- Delivery: health rows for every webhook, indexes for the DLQ and the sensor, dashboard views.
SET LOCAL search_path TO alert_delivery, public;

-- Every webhook has a health row, so the breaker/bucket statement can lock it without an upsert
-- (a data-modifying CTE cannot see rows another CTE of the same statement inserted).
CREATE FUNCTION webhook_health_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_delivery.webhook_health (webhook_id) VALUES (NEW.webhook_id)
    ON CONFLICT (webhook_id) DO NOTHING;
    RETURN NEW;
END
$$;

CREATE TRIGGER webhooks_health_row AFTER INSERT ON webhooks
    FOR EACH ROW EXECUTE FUNCTION webhook_health_row();

INSERT INTO webhook_health (webhook_id) SELECT webhook_id FROM webhooks ON CONFLICT DO NOTHING;

-- The sensor asks "which pending rows were created after the cursor"; the DLQ lists by time.
CREATE INDEX delivery_queue_dead_at ON delivery_queue (dead_at) WHERE status = 'dead';

CREATE VIEW queue_health AS
SELECT status,
       count(*) AS row_count,
       count(*) FILTER (WHERE next_attempt_at <= now()) AS due,
       min(created_at) AS oldest_created_at,
       extract(epoch FROM now() - min(next_attempt_at) FILTER (WHERE next_attempt_at <= now()))
           AS oldest_due_age_s,
       max(attempts) AS max_attempts
FROM delivery_queue
GROUP BY status;

CREATE VIEW webhook_performance AS
SELECT w.webhook_id, w.name, w.kind, w.url_redacted, w.active,
       h.total, h.succeeded, h.failed,
       CASE WHEN h.total > 0 THEN round(100.0 * h.succeeded / h.total, 2) END AS success_pct,
       h.avg_latency_ms, h.p95_latency_ms, h.consecutive_failures, h.breaker_state, h.status,
       h.last_success_at, h.last_failure_at
FROM webhooks w
LEFT JOIN webhook_health h USING (webhook_id);

CREATE VIEW degraded_webhooks AS
SELECT * FROM webhook_performance
WHERE status <> 'healthy' OR breaker_state <> 'closed' OR NOT active;
