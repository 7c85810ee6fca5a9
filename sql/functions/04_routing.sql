-- Routing, grouping and enqueueing of trigger notifications, with Alertmanager's semantics:
-- rules in priority order, the first match wins unless it says `continue`; the fallback rules
-- (the default receiver) take what no other rule routes to an active webhook. Per (webhook,
-- rule, group_by values) alerts are batched: a new group waits group_wait, later alerts of a
-- group that already notified wait until group_interval after the previous batch; a batch
-- holds at most max_batch alerts. group_wait 0 (and PagerDuty, one event per alert) sends each
-- alert at once. Queue rows carry alert ids only: the delivery engine renders the body when it
-- first claims the row, so joining a batch appends an id and formats nothing.

-- Every active webhook each alert goes to, with the rule that decides its timers.
CREATE OR REPLACE FUNCTION alert_delivery.route_pairs(p_ids bigint[])
RETURNS TABLE (alert_id bigint, ord bigint, webhook_id bigint, kind text, rule_id bigint,
               group_key text, group_wait_s integer, group_interval_s integer,
               max_batch integer, escalate_after_s integer, repeat_interval_s integer,
               seq integer)
LANGUAGE sql STABLE AS $$
    WITH a AS (
        SELECT a.alert_id, a.labels, a.extra_kinds, a.notify_count, u.ord
        FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
        -- The ANY keeps this a primary-key lookup whatever the statistics say.
        JOIN alert_delivery.alerts a ON a.alert_id = u.id AND a.alert_id = ANY (p_ids)
    ), rules AS (
        SELECT r.*, row_number() OVER (ORDER BY r.priority, r.rule_id) AS pos,
               -- Rules of non-empty equality matchers only (most of them) match by containment.
               NOT jsonb_path_exists(r.matchers, '$[*] ? (@[1] != "=" || @[2] == "")')
                   AS eq_only,
               alert_delivery.matchers_equalities(r.matchers) AS eq
        FROM alert_delivery.routing_rules r WHERE r.active
    ), matched AS (
        SELECT a.alert_id, r.rule_id, r.pos, r.continues, r.is_fallback
        FROM a JOIN rules r ON CASE WHEN r.eq_only THEN a.labels @> r.eq
                                    ELSE alert_delivery.labels_match(a.labels, r.matchers) END
    ), chosen AS (
        -- Up to and including the first matching rule without `continue` (fallback rules are
        -- ordered among themselves the same way). Window functions, not NOT EXISTS: linear
        -- whatever plan a batch gets (a generic plan's nested anti-join was quadratic).
        SELECT m.* FROM (
            SELECT m.*, min(m.pos) FILTER (WHERE NOT m.continues)
                            OVER (PARTITION BY m.alert_id, m.is_fallback) AS stop
            FROM matched m) m
        WHERE m.stop IS NULL OR m.pos <= m.stop
    ), targets AS (
        SELECT c.alert_id, c.is_fallback, c.pos, r.rule_id, w.webhook_id, w.kind, r.group_wait_s,
               r.group_interval_s, r.max_batch, r.group_by, r.escalate_after_s,
               r.repeat_interval_s
        FROM chosen c JOIN rules r ON r.rule_id = c.rule_id
        JOIN alert_delivery.webhooks w ON w.active AND (w.kind = ANY (r.target_kinds) OR EXISTS (
            SELECT 1 FROM alert_delivery.routing_rule_targets t
            WHERE t.rule_id = r.rule_id AND t.webhook_id = w.webhook_id))
        UNION ALL
        -- Seed 002's per-alert channel flags: those kinds too, at once.
        SELECT a.alert_id, false, 0, NULL, w.webhook_id, w.kind, 0, 30, 10, '{}', NULL, 14400
        FROM a JOIN alert_delivery.webhooks w ON w.active AND w.kind = ANY (a.extra_kinds)
    ), usable AS (
        -- The fallback only for alerts no other rule sends anywhere.
        SELECT t.* FROM (
            SELECT t.*, bool_or(NOT t.is_fallback) OVER (PARTITION BY t.alert_id) AS routed
            FROM targets t) t
        WHERE NOT t.is_fallback OR NOT t.routed
    )
    SELECT DISTINCT ON (u.alert_id, u.webhook_id) u.alert_id, a.ord, u.webhook_id, u.kind,
           u.rule_id,
           CASE WHEN u.group_wait_s > 0 AND u.kind <> 'pagerduty'
                THEN 'trigger:' || u.rule_id || ':'
                     || alert_delivery.group_values(a.labels, u.group_by) END,
           u.group_wait_s, u.group_interval_s, u.max_batch, u.escalate_after_s,
           u.repeat_interval_s, a.notify_count
    FROM usable u JOIN a ON a.alert_id = u.alert_id
    ORDER BY u.alert_id, u.webhook_id, u.is_fallback, u.pos
$$;

CREATE OR REPLACE FUNCTION alert_delivery.notify_alerts(p_ids bigint[])
RETURNS TABLE (alert_id bigint, queued integer) LANGUAGE plpgsql
-- Generic plans whatever the batch: every table it reads is reached by an index (alerts and queue
-- rows by key, a group by webhook and key), and with sequential scans off a plan made while the
-- tables were small still takes those indexes as they grow. Custom plans cost a batch of 100 a
-- tenth of its time in planning, and planned every foreign-key check of its queue rows again
-- (720 plannings, 10 ms of a batch of 500). No JIT: the estimates of set-returning pieces pass
-- jit_above_cost, and compiling took ~50 ms a call.
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_pairs jsonb;
    g record;
    v_prev record;
    v_open_id bigint;
    v_open_ids bigint[];
    v_ids bigint[];
    v_fill integer;
    v_due timestamptz;
    v_max bigint;
    v_found boolean;
    v_routed bigint;
BEGIN
    SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.ord, p.webhook_id), '[]'),
           count(DISTINCT p.alert_id)
    INTO v_pairs, v_routed
    FROM alert_delivery.route_pairs(p_ids) p;

    IF v_pairs = '[]' THEN
        INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
        SELECT u.id, 'suppressed_no_route',
               'no active routing rule (fallback included) resolves to an active webhook'
        FROM unnest(p_ids) WITH ORDINALITY AS u(id, n) ORDER BY u.n;
        RETURN QUERY SELECT u.id, 0 FROM unnest(p_ids) WITH ORDINALITY AS u(id, n) ORDER BY u.n;
        RETURN;
    END IF;

    -- At once: one row per alert and webhook.
    IF jsonb_path_exists(v_pairs, '$[*] ? (@.group_key == null)') THEN
        WITH ins AS (
            INSERT INTO alert_delivery.delivery_queue (alert_id, alert_ids, webhook_id, event, seq)
            SELECT p.alert_id, ARRAY[p.alert_id], p.webhook_id, 'trigger', p.seq
            FROM jsonb_to_recordset(v_pairs) AS p(alert_id bigint, ord bigint, webhook_id bigint,
                                                  group_key text, seq integer)
            WHERE p.group_key IS NULL ORDER BY p.ord, p.webhook_id
            ON CONFLICT (alert_id, webhook_id, event, seq) DO NOTHING
            RETURNING delivery_id, alert_id, webhook_id)
        , logged AS (
            INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event,
                                                     detail)
            SELECT ins.delivery_id, ins.alert_id, ins.webhook_id, 'queued', 'trigger'
            FROM ins ORDER BY ins.delivery_id)
        SELECT max(ins.delivery_id) INTO v_max FROM ins;
    END IF;

    -- Grouped: per (webhook, group key), join the open batch while it has room, then new rows.
    IF jsonb_path_exists(v_pairs, '$[*] ? (@.group_key != null)') THEN
        FOR g IN
            SELECT p.webhook_id, p.group_key, min(p.max_batch) AS max_batch,
                   min(p.group_wait_s) AS wait_s, min(p.group_interval_s) AS interval_s,
                   array_agg(p.alert_id ORDER BY p.ord) AS ids,
                   array_agg(p.seq ORDER BY p.ord) AS seqs
            FROM jsonb_to_recordset(v_pairs) AS p(alert_id bigint, ord bigint, webhook_id bigint,
                                                  group_key text, group_wait_s integer,
                                                  group_interval_s integer, max_batch integer,
                                                  seq integer)
            WHERE p.group_key IS NOT NULL
            GROUP BY p.webhook_id, p.group_key ORDER BY p.webhook_id, p.group_key
        LOOP
            v_ids := g.ids;
            v_open_id := NULL;
            SELECT q.delivery_id, q.status, q.attempts, q.body IS NULL AS unrendered, q.group_due_at
            INTO v_prev
            FROM alert_delivery.delivery_queue q
            WHERE q.webhook_id = g.webhook_id AND q.group_key = g.group_key
            ORDER BY q.delivery_id DESC LIMIT 1;
            v_found := FOUND;
            IF v_found AND v_prev.status = 'pending' AND v_prev.attempts = 0 AND v_prev.unrendered
               AND v_prev.group_due_at > now() THEN
                SELECT q.delivery_id, q.alert_ids INTO v_open_id, v_open_ids
                FROM alert_delivery.delivery_queue q
                WHERE q.delivery_id = v_prev.delivery_id AND q.status = 'pending' AND q.body IS NULL
                FOR UPDATE SKIP LOCKED;
            END IF;
            IF v_open_id IS NOT NULL THEN
                IF v_ids && v_open_ids THEN
                    v_ids := ARRAY(SELECT u FROM unnest(v_ids) WITH ORDINALITY AS x(u, n)
                                   WHERE NOT u = ANY (v_open_ids) ORDER BY n);
                END IF;
                v_fill := least(greatest(g.max_batch - cardinality(v_open_ids), 0),
                                cardinality(v_ids));
                IF v_fill > 0 THEN
                    WITH joined AS (
                        UPDATE alert_delivery.delivery_queue
                        SET alert_ids = alert_ids || v_ids[1:v_fill], updated_at = now()
                        WHERE delivery_id = v_open_id
                        RETURNING delivery_id)
                    INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id,
                                                             event, detail)
                    SELECT j.delivery_id, u.id, g.webhook_id, 'queued',
                           format('grouped, %s alert(s) in batch', cardinality(v_open_ids) + u.n)
                    FROM joined j, unnest(v_ids[1:v_fill]) WITH ORDINALITY AS u(id, n)
                    ORDER BY u.n;
                    v_max := greatest(v_max, v_open_id);
                    v_ids := v_ids[v_fill + 1:];
                END IF;
            END IF;
            CONTINUE WHEN cardinality(v_ids) = 0;
            v_due := CASE
                WHEN NOT v_found OR v_prev.group_due_at IS NULL
                    THEN now() + make_interval(secs => g.wait_s)
                -- A full batch still waiting: the overflow goes at the same time.
                WHEN v_prev.group_due_at > now() THEN v_prev.group_due_at
                WHEN v_prev.group_due_at > now() - make_interval(secs => g.interval_s)
                    THEN v_prev.group_due_at + make_interval(secs => g.interval_s)
                ELSE now() + make_interval(secs => g.wait_s) END;
            WITH chunks AS (
                SELECT array_agg(u.id ORDER BY u.n) AS ids
                FROM unnest(v_ids) WITH ORDINALITY AS u(id, n)
                GROUP BY (u.n - 1) / g.max_batch
            ), ins AS (
                INSERT INTO alert_delivery.delivery_queue (alert_id, alert_ids, webhook_id, event,
                                                           seq, group_key, next_attempt_at,
                                                           group_due_at)
                SELECT c.ids[1], c.ids, g.webhook_id, 'trigger',
                       g.seqs[array_position(g.ids, c.ids[1])], g.group_key, v_due, v_due
                FROM chunks c
                ORDER BY c.ids[1]
                ON CONFLICT (alert_id, webhook_id, event, seq) DO NOTHING
                RETURNING delivery_id, alert_ids)
            , logged AS (
                INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event,
                                                         detail)
                SELECT ins.delivery_id, u.id, g.webhook_id, 'queued',
                       CASE WHEN u.n = 1 THEN 'trigger'
                            ELSE format('grouped, %s alert(s) in batch', u.n) END
                FROM ins CROSS JOIN LATERAL unnest(ins.alert_ids) WITH ORDINALITY AS u(id, n)
                ORDER BY ins.delivery_id, u.n)
            SELECT greatest(v_max, max(ins.delivery_id)) INTO v_max FROM ins;
        END LOOP;
    END IF;

    -- The notified alerts: when, how often, and the timers of the rules that routed them
    -- (escalate_after_s NULL: the severity default decides).
    UPDATE alert_delivery.alerts a
    SET last_notified_at = now(), notify_count = a.notify_count + 1,
        escalate_after_s = p.esc, repeat_interval_s = p.rep, updated_at = now()
    FROM (SELECT p.alert_id, min(p.escalate_after_s) AS esc, min(p.repeat_interval_s) AS rep
          FROM jsonb_to_recordset(v_pairs) AS p(alert_id bigint, escalate_after_s integer,
                                                repeat_interval_s integer)
          GROUP BY p.alert_id) p
    WHERE a.alert_id = p.alert_id AND a.alert_id = ANY (p_ids);

    IF v_routed < cardinality(p_ids) THEN
        INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
        SELECT u.id, 'suppressed_no_route',
               'no active routing rule (fallback included) resolves to an active webhook'
        FROM unnest(p_ids) WITH ORDINALITY AS u(id, n)
        LEFT JOIN (SELECT DISTINCT p.alert_id
                   FROM jsonb_to_recordset(v_pairs) AS p(alert_id bigint)) c ON c.alert_id = u.id
        WHERE c.alert_id IS NULL
        ORDER BY u.n;
    END IF;

    IF v_max IS NOT NULL THEN
        PERFORM pg_notify('alert_delivery_queue', v_max::text);
    END IF;

    RETURN QUERY
    SELECT u.id, coalesce(c.n, 0)::integer
    FROM unnest(p_ids) WITH ORDINALITY AS u(id, n)
    LEFT JOIN (SELECT p.alert_id, count(*) AS n
               FROM jsonb_to_recordset(v_pairs) AS p(alert_id bigint)
               GROUP BY p.alert_id) c ON c.alert_id = u.id
    ORDER BY u.n;
END $$;
