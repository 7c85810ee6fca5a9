-- Escalation: alerts nobody acknowledged in time and deliveries that do not get through are sent,
-- again and again up to a limit, to an escalation route (matchers on the alert's labels), or
-- failing one to the alert's own route. State lives in alert_delivery.escalations, so a
-- restarted scheduler carries on where the last run stopped.

-- Escalate-after ------------------------------------------------------------------------------
-- The smallest escalate-after of the rules that routed the alert; a route that did not set one
-- (NULL) leaves the design's default by severity: CRITICAL at once, WARNING 10 min, INFO 30 min.
CREATE OR REPLACE FUNCTION alert_delivery.escalate_after_s(a alert_delivery.alerts)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce(a.escalate_after_s, CASE a.severity WHEN 'CRITICAL' THEN 0
                                                        WHEN 'WARNING' THEN 600 ELSE 1800 END)
$$;

-- Targets -------------------------------------------------------------------------------------
-- Every active webhook of the matching escalation routes; when none, the alert's normal route
-- (the webhooks its trigger went to). p_exclude is the webhook a delivery escalation is about:
-- telling a receiver that is not answering about itself helps nobody.
CREATE OR REPLACE FUNCTION alert_delivery.escalation_targets(a alert_delivery.alerts, p_reason text,
                                                  p_exclude bigint)
RETURNS TABLE (webhook_id bigint, kind text, via text) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT DISTINCT ON (w.webhook_id) w.webhook_id, w.kind, 'escalation route ' || r.name
    FROM alert_delivery.escalation_routes r
    JOIN alert_delivery.webhooks w ON w.active AND (w.kind = ANY (r.target_kinds) OR EXISTS (
        SELECT 1 FROM alert_delivery.escalation_route_targets t
        WHERE t.route_id = r.route_id AND t.webhook_id = w.webhook_id))
    WHERE r.active AND p_reason = ANY (r.reasons)
      AND alert_delivery.labels_match(a.labels, r.matchers)
      AND w.webhook_id IS DISTINCT FROM p_exclude
    ORDER BY w.webhook_id, r.route_id;
    IF FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT DISTINCT w.webhook_id, w.kind, 'alert route'
    FROM alert_delivery.delivery_queue q
    JOIN alert_delivery.webhooks w ON w.webhook_id = q.webhook_id
    WHERE q.alert_ids @> ARRAY[a.alert_id] AND q.event = 'trigger' AND w.active
      AND w.webhook_id IS DISTINCT FROM p_exclude
    ORDER BY w.webhook_id;
END $$;

-- Sending one level ---------------------------------------------------------------------------
-- Queue rows use event 'escalate' and seq = level, so (alert, webhook, event, seq) admits one row
-- per level. An alert's later escalations (another reason, another delivery) add 10 per earlier
-- escalation, so their levels never collide with the first one's.
CREATE OR REPLACE FUNCTION alert_delivery.send_escalation(p_escalation_id bigint,
                                                          p_max_level integer,
                                                          p_interval_s integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    e alert_delivery.escalations;
    a alert_delivery.alerts;
    q alert_delivery.delivery_queue;
    t record;
    v_level integer;
    v_seq integer;
    v_detail text;
    v_id bigint;
    v_max bigint := 0;
    v_n integer := 0;
BEGIN
    SELECT * INTO e FROM alert_delivery.escalations WHERE escalation_id = p_escalation_id;
    SELECT * INTO a FROM alert_delivery.alerts WHERE alert_id = e.alert_id;
    v_level := e.level + 1;
    v_seq := v_level + 10 * (SELECT count(*) FROM alert_delivery.escalations o
                             WHERE o.alert_id = e.alert_id AND o.escalation_id < e.escalation_id);
    IF e.delivery_id IS NOT NULL THEN
        SELECT * INTO q FROM alert_delivery.delivery_queue WHERE delivery_id = e.delivery_id;
    END IF;
    v_detail := format('level %s of %s: ', v_level, p_max_level) || CASE e.reason
        WHEN 'unacknowledged' THEN format('%s alert unacknowledged for %s s', a.severity,
                                          floor(extract(epoch FROM now() - a.created_at)))
        WHEN 'stale_delivery' THEN format('%s delivery %s %s for %s s', q.event, q.delivery_id,
                                          q.status,
                                          floor(extract(epoch FROM now() - q.created_at)))
        ELSE format('%s delivery %s failed %s attempts; the next failure dead-letters it',
                    q.event, q.delivery_id, q.attempts) END;
    FOR t IN SELECT * FROM alert_delivery.escalation_targets(a, e.reason, q.webhook_id) LOOP
        INSERT INTO alert_delivery.delivery_queue (alert_id, alert_ids, webhook_id, event, seq)
        VALUES (a.alert_id, ARRAY[a.alert_id], t.webhook_id, 'escalate', v_seq)
        ON CONFLICT (alert_id, webhook_id, event, seq) DO NOTHING
        RETURNING delivery_id INTO v_id;
        IF v_id IS NOT NULL THEN
            INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event,
                                                     detail)
            VALUES (v_id, a.alert_id, t.webhook_id, 'escalated', v_detail || ' (via ' || t.via
                                                                 || ')');
            v_n := v_n + 1;
            v_max := greatest(v_max, v_id);
        END IF;
    END LOOP;
    IF v_n = 0 THEN
        INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, event, detail)
        VALUES (e.delivery_id, a.alert_id, 'escalated',
                v_detail || ' (no escalation route or alert route reaches an active webhook)');
    END IF;
    UPDATE alert_delivery.escalations
    SET level = v_level, last_sent_at = now(),
        next_at = now() + make_interval(secs => p_interval_s),
        stopped_at = CASE WHEN v_level >= p_max_level THEN now() END,
        stop_reason = CASE WHEN v_level >= p_max_level THEN 'max_level' END
    WHERE escalation_id = e.escalation_id;
    IF v_n > 0 THEN
        PERFORM pg_notify('alert_delivery_queue', v_max::text);
    END IF;
    RETURN v_n;
END $$;

-- One run: stop, open, send ---------------------------------------------------------------------
-- Safe to run concurrently and repeatedly: opening relies on the unique open index, sending
-- locks due rows with SKIP LOCKED and moves next_at before it commits.
CREATE OR REPLACE FUNCTION alert_delivery.run_escalations(p_interval_s integer DEFAULT 600,
                                                          p_max_level integer DEFAULT 5,
                                                          p_stale_after_s integer DEFAULT 1800,
                                                          p_dead_after_attempts integer DEFAULT 8)
RETURNS TABLE (escalation_id bigint, alert_id bigint, delivery_id bigint, reason text,
               action text, level integer, queued integer)
-- Per-row PL/pgSQL calls inflate the planner's cost estimates past jit_above_cost, and compiling
-- costs more than these small index-driven statements take to run.
LANGUAGE plpgsql SET jit = off AS $$
#variable_conflict use_column
DECLARE
    r record;
    v_field text;
BEGIN
    v_field := CASE WHEN p_interval_s IS NULL OR p_interval_s < 1 THEN 'interval_s'
                    WHEN p_max_level IS NULL OR p_max_level NOT BETWEEN 1 AND 5 THEN 'max_level'
                    WHEN p_stale_after_s IS NULL OR p_stale_after_s < 1 THEN 'stale_after_s'
                    WHEN p_dead_after_attempts IS NULL OR p_dead_after_attempts < 1
                        THEN 'dead_after_attempts' END;
    IF v_field IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', COLUMN = v_field,
            MESSAGE = format('run_escalations: %s out of range (interval_s >= 1, max_level 1-5,'
                             ' stale_after_s >= 1, dead_after_attempts >= 1)', v_field);
    END IF;

    -- Stop: the alert is no longer firing (acknowledge_alert/resolve_alert stop theirs at once;
    -- this catches any other way), or the delivery is no longer waiting.
    FOR r IN
        UPDATE alert_delivery.escalations e SET stopped_at = now(), stop_reason = a.status
        FROM alert_delivery.alerts a
        WHERE e.stopped_at IS NULL AND a.alert_id = e.alert_id AND a.status <> 'firing'
        RETURNING e.*
    LOOP
        escalation_id := r.escalation_id; alert_id := r.alert_id; delivery_id := r.delivery_id;
        reason := r.reason; action := 'stopped: ' || r.stop_reason; level := r.level; queued := 0;
        RETURN NEXT;
    END LOOP;
    FOR r IN
        UPDATE alert_delivery.escalations e SET stopped_at = now(),
            stop_reason = 'delivery ' || q.status
        FROM alert_delivery.delivery_queue q
        WHERE e.stopped_at IS NULL AND q.delivery_id = e.delivery_id
          AND q.status NOT IN ('pending', 'in_flight')
        RETURNING e.*
    LOOP
        escalation_id := r.escalation_id; alert_id := r.alert_id; delivery_id := r.delivery_id;
        reason := r.reason; action := 'stopped: ' || r.stop_reason; level := r.level; queued := 0;
        RETURN NEXT;
    END LOOP;

    -- Open: firing alerts notified longer ago than their escalate-after. The clock starts at the
    -- first trigger notification (a held alert's starts when it is released).
    INSERT INTO alert_delivery.escalations (alert_id, reason, next_at)
    SELECT a.alert_id, 'unacknowledged', now()
    FROM alert_delivery.alerts a
    CROSS JOIN LATERAL (SELECT min(q.created_at) AS first_at FROM alert_delivery.delivery_queue q
                        WHERE q.alert_ids @> ARRAY[a.alert_id] AND q.event = 'trigger') f
    WHERE a.status = 'firing' AND a.held_reason IS NULL AND f.first_at IS NOT NULL
      AND greatest(a.created_at, f.first_at)
          <= now() - make_interval(secs => alert_delivery.escalate_after_s(a))
      AND NOT EXISTS (SELECT 1 FROM alert_delivery.escalations o
                      WHERE o.alert_id = a.alert_id AND o.reason = 'unacknowledged')
    ORDER BY a.alert_id
    ON CONFLICT (alert_id, reason) WHERE stopped_at IS NULL DO NOTHING;

    -- Open: deliveries of firing alerts waiting too long, or one failure from the dead-letter
    -- queue (attempts == schedule length: the delivery engine dead-letters the next failure).
    -- Escalation rows themselves do not escalate again.
    INSERT INTO alert_delivery.escalations (alert_id, delivery_id, reason, next_at)
    SELECT DISTINCT ON (q.alert_id, c.reason) q.alert_id, q.delivery_id, c.reason, now()
    FROM alert_delivery.delivery_queue q
    JOIN alert_delivery.webhooks w ON w.webhook_id = q.webhook_id
    JOIN alert_delivery.alerts a ON a.alert_id = q.alert_id AND a.status = 'firing'
    CROSS JOIN LATERAL (VALUES
        ('stale_delivery', q.created_at <= now() - make_interval(secs => p_stale_after_s)),
        ('near_dead_letter', q.attempts >= coalesce(nullif(cardinality(w.retry_schedule_s), 0),
                                                    p_dead_after_attempts))) c(reason, hit)
    WHERE q.status IN ('pending', 'in_flight') AND q.event NOT IN ('escalate', 'test') AND c.hit
      AND NOT EXISTS (SELECT 1 FROM alert_delivery.escalations o
                      WHERE o.delivery_id = q.delivery_id AND o.reason = c.reason)
    ORDER BY q.alert_id, c.reason, q.delivery_id
    ON CONFLICT (alert_id, reason) WHERE stopped_at IS NULL DO NOTHING;

    -- Send every due level. Held (silenced, inhibited) alerts wait; they stay due.
    FOR r IN
        SELECT e.* FROM alert_delivery.escalations e
        JOIN alert_delivery.alerts a ON a.alert_id = e.alert_id
        WHERE e.stopped_at IS NULL AND e.next_at <= now() AND a.status = 'firing'
          AND a.held_reason IS NULL
        ORDER BY e.next_at, e.escalation_id
        FOR UPDATE OF e SKIP LOCKED
    LOOP
        escalation_id := r.escalation_id; alert_id := r.alert_id; delivery_id := r.delivery_id;
        reason := r.reason; level := r.level + 1;
        queued := alert_delivery.send_escalation(r.escalation_id, p_max_level, p_interval_s);
        action := CASE WHEN level >= p_max_level THEN 'sent, stopped: max_level' ELSE 'sent' END;
        RETURN NEXT;
    END LOOP;
END $$;
