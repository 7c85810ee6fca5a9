-- Lifecycle: acknowledge, resolve, and releasing alerts a silence or an inhibition held back.

CREATE OR REPLACE FUNCTION alert_delivery.lock_alert(p_alert_id bigint)
RETURNS alert_delivery.alerts LANGUAGE plpgsql AS $$
DECLARE
    a alert_delivery.alerts;
BEGIN
    SELECT * INTO a FROM alert_delivery.alerts
    WHERE alert_delivery.alerts.alert_id = p_alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING MESSAGE = format('alert %s does not exist', p_alert_id),
                              ERRCODE = 'no_data_found', COLUMN = 'alert_id';
    END IF;
    RETURN a;
END $$;

-- Acknowledge and resolve notices go to the webhooks that received the alert's trigger, of
-- every kind, unless the webhook turned send_resolved off.
CREATE OR REPLACE FUNCTION alert_delivery.enqueue_followup(p_alert_id bigint, p_event text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_max bigint;
    v_n integer;
BEGIN
    WITH ins AS (
        INSERT INTO alert_delivery.delivery_queue (alert_id, alert_ids, webhook_id, event)
        SELECT p_alert_id, ARRAY[p_alert_id], w.webhook_id, p_event
        FROM alert_delivery.webhooks w
        WHERE w.active AND w.send_resolved AND EXISTS (
            SELECT 1 FROM alert_delivery.delivery_queue q
            WHERE q.alert_ids @> ARRAY[p_alert_id] AND q.event = 'trigger'
              AND q.webhook_id = w.webhook_id)
        ORDER BY w.webhook_id
        ON CONFLICT (alert_id, webhook_id, event, seq) DO NOTHING
        RETURNING delivery_id, webhook_id
    ), logged AS (
        INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event, detail)
        SELECT ins.delivery_id, p_alert_id, ins.webhook_id, 'queued', p_event FROM ins
        ORDER BY ins.delivery_id
    )
    SELECT count(*), max(ins.delivery_id) INTO v_n, v_max FROM ins;
    IF v_n > 0 THEN
        PERFORM pg_notify('alert_delivery_queue', v_max::text);
    END IF;
    RETURN v_n;
END $$;

-- Held alerts no silence or inhibition covers any more notify now, if they still fire.
CREATE OR REPLACE FUNCTION alert_delivery.release_held() RETURNS integer LANGUAGE plpgsql
-- Generic plans: custom plans of the small lookups cost more to plan than to run. No JIT: the
-- estimates of set-returning pieces pass jit_above_cost, and compiling took ~50 ms a call.
SET plan_cache_mode = force_generic_plan SET jit = off AS $$
DECLARE
    v_released bigint[];
BEGIN
    WITH held AS (
        SELECT a.alert_id, a.status, a.labels, a.held_reason, a.held_by
        FROM alert_delivery.alerts a WHERE a.held_reason IS NOT NULL
        ORDER BY a.alert_id FOR UPDATE SKIP LOCKED
    ), now_by AS (
        SELECT h.*, s.silence_id, i.alert_id AS inhibitor
        FROM held h
        LEFT JOIN LATERAL alert_delivery.silencing(h.labels) s ON h.status = 'firing'
        LEFT JOIN LATERAL alert_delivery.inhibiting(h.alert_id, h.labels, '{}') i
          ON h.status = 'firing' AND s.silence_id IS NULL
    ), upd AS (
        UPDATE alert_delivery.alerts a
        SET held_reason = CASE WHEN n.status <> 'firing' THEN NULL
                               WHEN n.silence_id IS NOT NULL THEN 'silenced'
                               WHEN n.inhibitor IS NOT NULL THEN 'inhibited' END,
            held_by = CASE WHEN n.status = 'firing' THEN coalesce(n.silence_id, n.inhibitor) END
        FROM now_by n WHERE a.alert_id = n.alert_id
          AND (a.held_reason, a.held_by) IS DISTINCT FROM (
              CASE WHEN n.status <> 'firing' THEN NULL
                   WHEN n.silence_id IS NOT NULL THEN 'silenced'
                   WHEN n.inhibitor IS NOT NULL THEN 'inhibited' END,
              CASE WHEN n.status = 'firing' THEN coalesce(n.silence_id, n.inhibitor) END)
    ), logged AS (
        INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
        SELECT n.alert_id, 'released',
               format('%s by %s no longer applies', n.held_reason, n.held_by)
        FROM now_by n
        WHERE n.status = 'firing' AND n.silence_id IS NULL AND n.inhibitor IS NULL
        ORDER BY n.alert_id
    )
    SELECT coalesce(array_agg(n.alert_id ORDER BY n.alert_id), '{}') INTO v_released
    FROM now_by n WHERE n.status = 'firing' AND n.silence_id IS NULL AND n.inhibitor IS NULL;
    IF cardinality(v_released) > 0 THEN
        PERFORM 1 FROM alert_delivery.notify_alerts(v_released);
    END IF;
    RETURN cardinality(v_released);
END $$;

CREATE OR REPLACE FUNCTION alert_delivery.acknowledge_alert(p_alert_id bigint,
                                                            p_by text DEFAULT 'unknown')
RETURNS integer LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    a alert_delivery.alerts := alert_delivery.lock_alert(p_alert_id);
    v_by text := left(coalesce(nullif(btrim(p_by), ''), 'unknown'), 200);
BEGIN
    IF a.status <> 'firing' THEN
        RAISE EXCEPTION USING MESSAGE = format('alert %s is %s, not firing', p_alert_id, a.status),
                              ERRCODE = 'object_not_in_prerequisite_state', COLUMN = 'status';
    END IF;
    UPDATE alert_delivery.alerts SET status = 'acknowledged', acknowledged_at = now(),
                                     acknowledged_by = v_by, held_reason = NULL, held_by = NULL,
                                     updated_at = now()
    WHERE alert_id = p_alert_id;
    INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
    VALUES (p_alert_id, 'acknowledged', 'by ' || v_by);
    UPDATE alert_delivery.escalations SET stopped_at = now(), stop_reason = 'acknowledged'
    WHERE alert_id = p_alert_id AND stopped_at IS NULL;
    RETURN alert_delivery.enqueue_followup(p_alert_id, 'acknowledge');
END $$;

CREATE OR REPLACE FUNCTION alert_delivery.resolve_alert(p_alert_id bigint,
                                                        p_by text DEFAULT 'api')
RETURNS integer LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    a alert_delivery.alerts := alert_delivery.lock_alert(p_alert_id);
    v_by text := left(coalesce(nullif(btrim(p_by), ''), 'api'), 200);
    v_n integer;
BEGIN
    IF a.status = 'resolved' THEN
        RAISE EXCEPTION USING MESSAGE = format('alert %s is already resolved', p_alert_id),
                              ERRCODE = 'object_not_in_prerequisite_state', COLUMN = 'status';
    END IF;
    UPDATE alert_delivery.alerts SET status = 'resolved', resolved_at = now(), held_reason = NULL,
                                     held_by = NULL, updated_at = now()
    WHERE alert_id = p_alert_id;
    INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
    VALUES (p_alert_id, 'resolved', 'by ' || v_by);
    UPDATE alert_delivery.escalations SET stopped_at = now(), stop_reason = 'resolved'
    WHERE alert_id = p_alert_id AND stopped_at IS NULL;
    v_n := alert_delivery.enqueue_followup(p_alert_id, 'resolve');
    -- Alerts this one inhibited may notify now.
    PERFORM alert_delivery.release_held();
    RETURN v_n;
END $$;
