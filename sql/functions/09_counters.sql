-- Delivery counters (tables: migration 0012). Triggers append increments to the insert-only
-- delivery_counts; fold_delivery_counts() compacts them into delivery_counters. Readers sum both
-- (query exporter_counters), so a counter never depends on delivery_log's retention.

-- Moves every visible increment into delivery_counters; returns how many rows it moved. One fold
-- at a time (a transaction-scoped advisory lock, tried, never waited for): a second caller returns
-- 0 at once, so the exporter, the trigger and a maintenance job never block each other or the
-- writers. Rows of transactions still open are not visible yet: the next fold moves them.
CREATE OR REPLACE FUNCTION alert_delivery.fold_delivery_counts() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    moved bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7301994113) THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM alert_delivery.delivery_counts RETURNING event, kind, n, attempts
    ), sums AS (
        SELECT event, kind, sum(n) AS n, sum(attempts) AS attempts, count(*) AS pieces
        FROM gone GROUP BY event, kind
    ), up AS (
        INSERT INTO alert_delivery.delivery_counters AS c (event, kind, n, attempts)
        SELECT event, kind, n, attempts FROM sums
        ON CONFLICT (event, kind) DO UPDATE
        SET n = c.n + EXCLUDED.n, attempts = c.attempts + EXCLUDED.attempts, folded_at = now()
    )
    SELECT coalesce(sum(pieces), 0) INTO moved FROM sums;
    RETURN moved;
END
$$;

-- AFTER INSERT ... FOR EACH STATEMENT on delivery_log: one aggregate INSERT per statement, however
-- many rows it logged (the engine logs a whole batch in one statement). An attempt is a row of an
-- attempt event that carries a latency, as the exporter's latency histogram counts them. Works
-- unchanged on a partitioned delivery_log (the transition table holds the rows of every
-- partition an INSERT on the parent reached).
CREATE OR REPLACE FUNCTION alert_delivery.delivery_log_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    added bigint;
BEGIN
    -- Every claim fires this with no rows (its rate_limited INSERT logs one only when a bucket
    -- empties): return before the aggregate INSERT is started.
    IF NOT EXISTS (SELECT FROM logged) THEN
        RETURN NULL;
    END IF;
    INSERT INTO alert_delivery.delivery_counts (event, kind, n, attempts)
    SELECT l.event,
           CASE WHEN l.webhook_id IS NULL THEN 'none' ELSE coalesce(w.kind, 'unknown') END,
           count(*),
           count(*) FILTER (WHERE l.latency_ms IS NOT NULL
                              AND l.event IN ('attempt', 'delivered', 'failed', 'retry_scheduled',
                                              'dead_lettered', 'throttled'))
    FROM logged l
    LEFT JOIN alert_delivery.webhooks w ON w.webhook_id = l.webhook_id
    GROUP BY 1, 2;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added > 0 AND nextval('alert_delivery.delivery_counts_statements') % 1000 = 0 THEN
        PERFORM alert_delivery.fold_delivery_counts();
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER delivery_log_count AFTER INSERT ON alert_delivery.delivery_log
    REFERENCING NEW TABLE AS logged
    FOR EACH STATEMENT EXECUTE FUNCTION alert_delivery.delivery_log_count();

-- Circuit-breaker transitions, counted as events breaker_<new state> by webhook kind. The WHEN
-- clause keeps the trigger off the hot path: the function runs only when the state changes.
CREATE OR REPLACE FUNCTION alert_delivery.breaker_transition_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_delivery.delivery_counts (event, kind, n, attempts)
    SELECT 'breaker_' || NEW.breaker_state, coalesce(w.kind, 'unknown'), 1, 0
    FROM (SELECT 1) one
    LEFT JOIN alert_delivery.webhooks w ON w.webhook_id = NEW.webhook_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER webhook_health_breaker_count AFTER UPDATE OF breaker_state
    ON alert_delivery.webhook_health
    FOR EACH ROW WHEN (OLD.breaker_state IS DISTINCT FROM NEW.breaker_state)
    EXECUTE FUNCTION alert_delivery.breaker_transition_count();
