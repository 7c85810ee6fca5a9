-- Delivery: health rows for every webhook, indexes for the DLQ and the sensor. The dashboard
-- views are operations' (0005: v_queue_health, v_webhook_performance, v_degraded_webhooks).
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
