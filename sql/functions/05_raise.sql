-- The producer API. One path: raising one alert is raising a batch of one. Inside the caller's
-- transaction: validate, deduplicate by fingerprint (the label set), hold back by content
-- duplicate, silence or inhibition, then route and enqueue (notify_alerts). Invalid input
-- raises SQLSTATE 22023 naming the field; nothing is written, the caller decides.
-- Outcomes: notified, repeated, deduplicated, suppressed_duplicate_content, silenced,
-- inhibited, unrouted.

CREATE OR REPLACE FUNCTION alert_delivery.raise_batch(p_alerts jsonb, p_single boolean)
RETURNS TABLE (alert_id bigint, outcome text) LANGUAGE plpgsql
-- Generic plans for a few alerts (planning cost more than running), custom plans for a batch:
-- a generic plan is made once per session, and one made while the tables were small kept
-- scanning them whole as they grew (a batch of 100 after 3,000 alerts: 0.7 s, quadratic). No
-- JIT: the estimates of set-returning pieces pass jit_above_cost, and compiling took ~50 ms a
-- call.
SET plan_cache_mode = force_generic_plan SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_in jsonb;
    v_open jsonb;
    v_created jsonb;
    v_verdicts jsonb;
    v_end jsonb;
    v_ended jsonb := '{}';
    v_fp text;
    v_id bigint;
    v_queued jsonb;
    v_rows jsonb;
    v_new bigint[];
    v_ids bigint[];
    v_notify bigint[];
    v_bad record;
    v_dups boolean;
    v_one boolean;
    v_held jsonb;
BEGIN
    IF p_alerts IS NULL OR jsonb_typeof(p_alerts) <> 'array' THEN
        PERFORM alert_delivery.invalid_alert('alerts', 'must be a JSON array of alert objects');
    END IF;
    -- One alert (a producer's usual call) by simple expressions, without a statement.
    v_one := jsonb_array_length(p_alerts) = 1;
    IF v_one THEN
        v_in := jsonb_build_array(alert_delivery.alert_input(
                    p_alerts -> 0, CASE WHEN p_single THEN '' ELSE 'alerts[0].' END)
                || '{"i": 1}');
    ELSE
        SELECT coalesce(jsonb_agg(alert_delivery.alert_input(
                                      e.a, CASE WHEN p_single THEN ''
                                                ELSE format('alerts[%s].', e.i - 1) END)
                                  || jsonb_build_object('i', e.i) ORDER BY e.i), '[]')
        INTO v_in
        FROM jsonb_array_elements(p_alerts) WITH ORDINALITY AS e(a, i);
    END IF;
    PERFORM alert_delivery.analyze_if_grown('alert_delivery.alerts');
    -- From the first table lookup on, a batch gets custom plans (normalising the input above
    -- reads nothing else: its generic plan does); back to the function's own setting on return.
    IF jsonb_array_length(p_alerts) > 16 THEN
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    END IF;
    -- Alerts whose end time has passed (Prometheus sends them once resolved) resolve the open
    -- alert of their label set, after the rest of the batch.
    -- (The guards below are simple expressions: a statement skipped is one not planned.)
    v_end := '[]';
    IF jsonb_path_exists(v_in, '$[*].ends_at ? (@ != null)') THEN
        SELECT coalesce(jsonb_agg(x) FILTER (WHERE (x ->> 'ends_at')::timestamptz <= now()),
                        '[]'),
               coalesce(jsonb_agg(x) FILTER (WHERE (x ->> 'ends_at')::timestamptz > now()
                                               OR x ->> 'ends_at' IS NULL), '[]')
        INTO v_end, v_in
        FROM jsonb_array_elements(v_in) x;
    END IF;

    -- References that do not exist are the caller's mistake, not a foreign-key failure.
    IF jsonb_path_exists(v_in, '$[*] ? (@.anomaly_id != null || @.correlation_id != null)') THEN
        SELECT x.i, x.anomaly_id, x.correlation_id INTO v_bad
        FROM jsonb_to_recordset(v_in) AS x(i integer, anomaly_id bigint, correlation_id bigint)
        WHERE (x.anomaly_id IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM alert_delivery.anomalies n WHERE n.anomaly_id = x.anomaly_id))
           OR (x.correlation_id IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM alert_delivery.correlations c
                   WHERE c.correlation_id = x.correlation_id))
        ORDER BY x.i LIMIT 1;
        IF FOUND THEN
            PERFORM alert_delivery.invalid_alert(
                CASE WHEN p_single THEN '' ELSE format('alerts[%s].', v_bad.i - 1) END
                || CASE WHEN v_bad.anomaly_id IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM alert_delivery.anomalies n
                            WHERE n.anomaly_id = v_bad.anomaly_id)
                        THEN 'anomaly_id' ELSE 'correlation_id' END,
                'names no existing row');
        END IF;
    END IF;

    -- One producer at a time per fingerprint: a concurrent raise of the same labels waits here
    -- and then deduplicates into the alert the first one opened.
    PERFORM pg_advisory_xact_lock(1096, hashtext(f.fp))
    FROM (SELECT DISTINCT x ->> 'fingerprint' AS fp FROM jsonb_array_elements(v_in) x) f
    ORDER BY f.fp;

    SELECT coalesce(jsonb_object_agg(o.fingerprint, o.alert_id), '{}') INTO v_open
    FROM (SELECT a.fingerprint, a.alert_id FROM alert_delivery.alerts a
          WHERE a.fingerprint = ANY (ARRAY(SELECT x ->> 'fingerprint'
                                           FROM jsonb_array_elements(v_in) x))
            AND a.status IN ('firing', 'acknowledged')
          FOR UPDATE) o;

    -- New alerts: the first input of each fingerprint nothing open has, in input order.
    WITH x AS (
        SELECT * FROM jsonb_to_recordset(v_in) AS x(
            i integer, fingerprint text, content_hash text, labels jsonb, annotations jsonb,
            source text, operation_type text, alert_type text, severity text, title text,
            description text, details jsonb, partition_start timestamptz, anomaly_id bigint,
            correlation_id bigint, extra_kinds text[], starts_at timestamptz,
            ends_at timestamptz, generator_url text)
    ), firsts AS (
        SELECT DISTINCT ON (x.fingerprint) x.* FROM x
        WHERE NOT v_open ? x.fingerprint ORDER BY x.fingerprint, x.i
    ), ins AS (
        INSERT INTO alert_delivery.alerts (fingerprint, content_hash, labels, annotations, source,
                                           operation_type, alert_type, severity, title,
                                           description, payload, partition_start, anomaly_id,
                                           correlation_id, extra_kinds, starts_at, ends_at,
                                           generator_url)
        SELECT f.fingerprint, f.content_hash, f.labels, f.annotations, f.source,
               f.operation_type, f.alert_type, f.severity, f.title, f.description, f.details,
               f.partition_start, f.anomaly_id, f.correlation_id, f.extra_kinds,
               coalesce(f.starts_at, now()), f.ends_at, f.generator_url
        FROM firsts f ORDER BY f.i
        RETURNING alert_delivery.alerts.alert_id, alert_delivery.alerts.fingerprint)
    SELECT coalesce(jsonb_object_agg(ins.fingerprint, ins.alert_id), '{}'),
           coalesce(array_agg(ins.alert_id ORDER BY ins.alert_id), '{}')
    INTO v_created, v_new FROM ins;

    -- Every input with its alert; the others of a fingerprint are repeats of it.
    IF jsonb_array_length(v_in) = 1 THEN
        v_fp := v_in -> 0 ->> 'fingerprint';
        v_rows := jsonb_build_array(jsonb_build_object(
            'i', 1, 'alert_id', coalesce(v_open ->> v_fp, v_created ->> v_fp)::bigint,
            'is_new', v_created ? v_fp, 'first_dup', NOT v_created ? v_fp));
    ELSE
        SELECT jsonb_agg(jsonb_build_object(
                   'i', r.i, 'alert_id', r.alert_id, 'is_new', r.is_new,
                   'first_dup', r.first_dup) ORDER BY r.i)
        INTO v_rows
        FROM (SELECT x.i,
                     coalesce(v_open ->> x.fingerprint, v_created ->> x.fingerprint)::bigint
                         AS alert_id,
                     v_created ? x.fingerprint AND x.i = min(x.i) OVER w AS is_new,
                     NOT v_created ? x.fingerprint AND x.i = min(x.i) OVER w AS first_dup
              FROM jsonb_to_recordset(v_in) AS x(i integer, fingerprint text)
              WINDOW w AS (PARTITION BY x.fingerprint)) r;
    END IF;
    v_dups := jsonb_path_exists(v_rows, '$[*] ? (@.is_new == false)');
    v_notify := '{}';
    IF v_dups THEN
        v_ids := ARRAY(SELECT DISTINCT (r ->> 'alert_id')::bigint
                       FROM jsonb_array_elements(v_rows) r);

        -- Repeats update the open alert (occurrences, last seen, the newest annotations) and notify
        -- again once its repeat interval has passed since the last notification -- or since it was
        -- created, when it never notified (a content duplicate, no route then): never silent for
        -- good.
        WITH d AS (
            SELECT r.alert_id, count(*) AS n, max(r.i) AS last_i
            FROM jsonb_to_recordset(v_rows) AS r(i integer, alert_id bigint, is_new boolean)
            WHERE NOT r.is_new GROUP BY r.alert_id
        ), last_in AS (
            SELECT d.alert_id, d.n, x.annotations, x.title, x.description, x.ends_at,
                   x.generator_url
            FROM d JOIN jsonb_to_recordset(v_in) AS x(i integer, annotations jsonb, title text,
                                                      description text, ends_at timestamptz,
                                                      generator_url text) ON x.i = d.last_i
        )
        UPDATE alert_delivery.alerts a
        SET occurrences = a.occurrences + l.n, last_seen_at = now(), updated_at = now(),
            annotations = l.annotations, title = l.title, description = l.description,
            ends_at = coalesce(l.ends_at, a.ends_at),
            generator_url = coalesce(l.generator_url, a.generator_url)
        FROM last_in l WHERE a.alert_id = l.alert_id AND a.alert_id = ANY (v_ids);

        SELECT coalesce(array_agg(r.alert_id ORDER BY r.i), '{}') INTO v_notify
        FROM jsonb_to_recordset(v_rows) AS r(i integer, alert_id bigint, first_dup boolean)
        JOIN alert_delivery.alerts a ON a.alert_id = r.alert_id AND a.alert_id = ANY (v_ids)
        WHERE r.first_dup AND a.status = 'firing' AND a.held_reason IS NULL
          AND coalesce(a.last_notified_at, a.created_at)
              <= now() - make_interval(secs => coalesce(a.repeat_interval_s, 14400));
    END IF;

    -- New alerts, in order: historical ones (a backfill of hours past the horizon) are recorded,
    -- not paged; others are held back by another open alert with the same content notified
    -- within 24 h, an active silence, or an inhibiting alert (earlier ones of the batch
    -- included, later ones not: as if raised one by one).
    WITH v AS (
        SELECT u.id, u.n, d.alert_id AS dup_of, s.silence_id, h.alert_id AS inhibitor,
               coalesce(a.annotations ->> 'historical' = 'true', false) AS historical
        FROM unnest(v_new) WITH ORDINALITY AS u(id, n)
        JOIN alert_delivery.alerts a ON a.alert_id = u.id AND a.alert_id = ANY (v_new)
        -- max(), not ORDER BY ... LIMIT 1, which may walk the primary key past every alert.
        LEFT JOIN LATERAL (
            SELECT max(o.alert_id) AS alert_id FROM alert_delivery.alerts o
            WHERE o.content_hash = a.content_hash AND o.status IN ('firing', 'acknowledged')
              AND o.alert_id <> a.alert_id
              AND o.last_notified_at > now() - interval '24 hours') d ON true
        LEFT JOIN LATERAL alert_delivery.silencing(a.labels) s ON d.alert_id IS NULL
        LEFT JOIN LATERAL alert_delivery.inhibiting(a.alert_id, a.labels, v_new[u.n + 1:]) h
          ON d.alert_id IS NULL AND s.silence_id IS NULL
    )
    SELECT jsonb_object_agg(v.id, CASE WHEN v.historical THEN 'historical'
                                       WHEN v.dup_of IS NOT NULL
                                       THEN 'suppressed_duplicate_content'
                                       WHEN v.silence_id IS NOT NULL THEN 'silenced'
                                       WHEN v.inhibitor IS NOT NULL THEN 'inhibited' END),
           -- The new alerts nothing holds back, in order, then the repeats due to notify.
           coalesce(array_agg(v.id ORDER BY v.n)
                        FILTER (WHERE NOT v.historical
                                  AND coalesce(v.dup_of, v.silence_id, v.inhibitor) IS NULL),
                    '{}') || v_notify,
           jsonb_agg(to_jsonb(v) ORDER BY v.n)
               FILTER (WHERE v.historical
                          OR coalesce(v.dup_of, v.silence_id, v.inhibitor) IS NOT NULL)
    INTO v_verdicts, v_notify, v_held FROM v;

    -- What was held back, written only when there is some (an empty insert still sets up the
    -- partitioned log and fires its counting trigger).
    IF v_held IS NOT NULL THEN
        WITH h AS (
            SELECT * FROM jsonb_to_recordset(v_held) AS h(id bigint, n bigint, dup_of bigint,
                                                          silence_id bigint, inhibitor bigint,
                                                          historical boolean)
        ), held AS (
            UPDATE alert_delivery.alerts a
            SET held_reason = CASE WHEN h.silence_id IS NOT NULL THEN 'silenced'
                                   ELSE 'inhibited' END,
                held_by = coalesce(h.silence_id, h.inhibitor)
            FROM h WHERE a.alert_id = h.id AND a.alert_id = ANY (v_new) AND NOT h.historical
              AND (h.silence_id IS NOT NULL OR h.inhibitor IS NOT NULL)
        )
        INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
        SELECT h.id,
               CASE WHEN h.historical THEN 'suppressed_historical'
                    WHEN h.dup_of IS NOT NULL THEN 'suppressed_duplicate_content'
                    WHEN h.silence_id IS NOT NULL THEN 'suppressed_silenced'
                    ELSE 'suppressed_inhibited' END,
               CASE WHEN h.historical
                        THEN 'historical (older than the backfill horizon): recorded, summarised'
                             ' in the run''s digest instead of paged'
                    WHEN h.dup_of IS NOT NULL
                        THEN format('same content as open alert %s, notified within 24 h; '
                                    'notifies when its repeat interval passes', h.dup_of)
                    WHEN h.silence_id IS NOT NULL
                        THEN format('silence %s; notifies when it ends if still firing',
                                    h.silence_id)
                    ELSE format('inhibited by open alert %s; notifies when it resolves if '
                                'still firing', h.inhibitor) END
        FROM h ORDER BY h.n;
    END IF;

    SELECT coalesce(jsonb_object_agg(n.alert_id, n.queued), '{}') INTO v_queued
    FROM alert_delivery.notify_alerts(v_notify) n;

    IF v_dups THEN
        INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
        SELECT r.alert_id, 'suppressed_duplicate',
               format('fingerprint still %s as alert %s; repeat interval %s s', a.status,
                      a.alert_id, coalesce(a.repeat_interval_s, 14400))
        FROM jsonb_to_recordset(v_rows) AS r(i integer, alert_id bigint, is_new boolean,
                                             first_dup boolean)
        JOIN alert_delivery.alerts a ON a.alert_id = r.alert_id AND a.alert_id = ANY (v_ids)
        WHERE NOT r.is_new AND NOT (r.first_dup AND v_queued ? r.alert_id::text)
        ORDER BY r.i;
    END IF;

    IF v_end <> '[]' THEN
        FOR v_fp IN SELECT DISTINCT x ->> 'fingerprint' FROM jsonb_array_elements(v_end) x
                    ORDER BY 1
        LOOP
            SELECT a.alert_id INTO v_id FROM alert_delivery.alerts a
            WHERE a.fingerprint = v_fp AND a.status IN ('firing', 'acknowledged');
            IF FOUND THEN
                PERFORM alert_delivery.resolve_alert(v_id, 'producer: ends_at passed');
                v_ended := v_ended || jsonb_build_object(v_fp, v_id);
            END IF;
        END LOOP;
    END IF;

    RETURN QUERY
    SELECT o.alert_id, o.outcome FROM (
    SELECT (x ->> 'i')::integer AS i, (v_ended ->> (x ->> 'fingerprint'))::bigint AS alert_id,
           'resolved' AS outcome
    FROM jsonb_array_elements(v_end) x
    UNION ALL
    SELECT r.i, r.alert_id,
           CASE WHEN r.is_new AND v_verdicts ->> r.alert_id::text IS NOT NULL
                    THEN v_verdicts ->> r.alert_id::text
                WHEN r.is_new
                    THEN CASE WHEN (v_queued ->> r.alert_id::text)::integer > 0 THEN 'notified'
                              ELSE 'unrouted' END
                WHEN r.first_dup AND v_queued ? r.alert_id::text
                    THEN CASE WHEN (v_queued ->> r.alert_id::text)::integer > 0 THEN 'repeated'
                              ELSE 'unrouted' END
                ELSE 'deduplicated' END
    FROM jsonb_to_recordset(coalesce(v_rows, '[]')) AS r(i integer, alert_id bigint,
                                                         is_new boolean, first_dup boolean)
    ) o ORDER BY o.i;
END $$;

CREATE OR REPLACE FUNCTION alert_delivery.raise_alerts(p_alerts jsonb)
RETURNS TABLE (alert_id bigint, outcome text) LANGUAGE sql AS $$
    SELECT * FROM alert_delivery.raise_batch(p_alerts, false)
$$;

-- One alert as a JSON object (labels form or legacy fields; see alert_input).
CREATE OR REPLACE FUNCTION alert_delivery.raise_alert(p_alert jsonb)
RETURNS TABLE (alert_id bigint, outcome text) LANGUAGE sql AS $$
    SELECT * FROM alert_delivery.raise_batch(jsonb_build_array(p_alert), true)
$$;

-- The original positional API, kept for producers written against it.
CREATE OR REPLACE FUNCTION alert_delivery.raise_alert(
    p_source text, p_operation_type text, p_alert_type text, p_severity text, p_title text,
    p_description text DEFAULT '', p_details jsonb DEFAULT '{}',
    p_partition_start timestamptz DEFAULT NULL, p_anomaly_id bigint DEFAULT NULL,
    p_correlation_id bigint DEFAULT NULL)
RETURNS TABLE (alert_id bigint, outcome text) LANGUAGE sql AS $$
    SELECT * FROM alert_delivery.raise_batch(jsonb_build_array(jsonb_build_object(
            'source', coalesce(p_source, 'api'), 'operation_type', p_operation_type,
            'alert_type', p_alert_type, 'severity', p_severity, 'title', p_title,
            'description', p_description, 'details', p_details,
            'partition_start', p_partition_start, 'anomaly_id', p_anomaly_id,
            'correlation_id', p_correlation_id)), true)
$$;
