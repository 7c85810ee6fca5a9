-- delivery_log's daily partitions (table: migration 0013). A partition is named
-- delivery_log_pYYYYMMDD and holds [that UTC day, the next); delivery_log_history holds every row
-- logged before 0013 and delivery_log_default anything no partition covers. The Dagster schedule
-- log_partitions (alert_delivery/defs/operations.py) calls both functions once a day when
-- log_partitions_due says one of them has work.

-- The partitions of delivery_log with their bounds (NULL for MINVALUE and the default partition).
CREATE OR REPLACE FUNCTION alert_delivery.log_partitions()
RETURNS TABLE (name text, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text,
           substring(pg_get_expr(c.relpartbound, c.oid)
                     FROM $r$FROM \('([^']+)'\)$r$)::timestamptz,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM $r$TO \('([^']+)'\)$r$)::timestamptz
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'alert_delivery.delivery_log'::regclass
    ORDER BY 3 NULLS LAST, 1
$$;

-- Creates the daily partitions of today (UTC) and the next p_ahead days that do not exist yet;
-- returns their names. Rows the default partition caught for such a day move into it first
-- (attaching a range the default partition holds rows of would fail). The moved rows were
-- counted when they were logged: the counting trigger is on the parent, so moving them between
-- partitions counts nothing again.
CREATE OR REPLACE FUNCTION alert_delivery.ensure_log_partitions(p_ahead integer DEFAULT 7)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    today timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    day timestamptz;
    part text;
BEGIN
    IF p_ahead IS NULL OR p_ahead < 0 OR p_ahead > 366 THEN
        RAISE EXCEPTION 'ensure_log_partitions: p_ahead must be in [0, 366], got %', p_ahead
            USING ERRCODE = '22023';
    END IF;
    FOR i IN 0..p_ahead LOOP
        day := today + make_interval(days => i);
        part := 'delivery_log_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD');
        CONTINUE WHEN to_regclass('alert_delivery.' || quote_ident(part)) IS NOT NULL;
        -- Skip a day some other partition already covers (its bounds would overlap).
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM alert_delivery.log_partitions() p
            WHERE p.upper_bound > day
              AND coalesce(p.lower_bound, '-infinity') < day + interval '1 day'
        );
        EXECUTE format('CREATE TABLE alert_delivery.%I (LIKE alert_delivery.delivery_log)', part);
        IF to_regclass('alert_delivery.delivery_log_default') IS NOT NULL THEN
            EXECUTE format(
                'WITH moved AS (DELETE FROM alert_delivery.delivery_log_default'
                ' WHERE created_at >= %L AND created_at < %L RETURNING *)'
                ' INSERT INTO alert_delivery.%I SELECT * FROM moved',
                day, day + interval '1 day', part);
        END IF;
        EXECUTE format('ALTER TABLE alert_delivery.delivery_log ATTACH PARTITION alert_delivery.%I'
                       ' FOR VALUES FROM (%L) TO (%L)', part, day, day + interval '1 day');
        RETURN NEXT part;
    END LOOP;
END
$$;

-- Detaches and drops every partition whose rows are all older than p_retention (its upper bound
-- is at or before p_now - p_retention); returns their names. The default partition is never
-- dropped. Counters do not change: they live in delivery_counts / delivery_counters. p_now is for
-- tests (a clock 40 days ahead); callers leave it.
CREATE OR REPLACE FUNCTION alert_delivery.drop_expired_log_partitions(
    p_retention interval, p_now timestamptz DEFAULT now())
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part text;
BEGIN
    IF p_retention IS NULL OR p_retention < interval '1 day' THEN
        RAISE EXCEPTION 'drop_expired_log_partitions: retention must be at least 1 day, got %',
            p_retention USING ERRCODE = '22023';
    END IF;
    FOR part IN
        SELECT p.name FROM alert_delivery.log_partitions() p
        WHERE p.upper_bound <= p_now - p_retention
    LOOP
        EXECUTE format('ALTER TABLE alert_delivery.delivery_log DETACH PARTITION'
                       ' alert_delivery.%I', part);
        EXECUTE format('DROP TABLE alert_delivery.%I', part);
        RETURN NEXT part;
    END LOOP;
END
$$;

-- The schedule's due-check: a partition has expired, or one of the next p_ahead days has none.
CREATE OR REPLACE FUNCTION alert_delivery.log_partitions_due(p_retention interval,
                                                             p_ahead integer DEFAULT 7)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM alert_delivery.log_partitions() p
                   WHERE p.upper_bound <= now() - p_retention)
        OR coalesce((SELECT max(p.upper_bound) FROM alert_delivery.log_partitions() p), '-infinity')
           < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
             + make_interval(days => p_ahead + 1)
$$;
