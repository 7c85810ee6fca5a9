-- Delivery counters Prometheus can rate(): database-wide, monotonic, independent of delivery_log's
-- retention (rows deleted, partitions dropped). Depends on 0001 alone.
--
-- delivery_counts is insert-only: a statement-level trigger on delivery_log (sql/functions/
-- 09_counters.sql) appends one row per (statement, event, kind), so concurrent writers never
-- touch the same row and never wait for each other. fold_delivery_counts() moves those rows into
-- delivery_counters, one row per (event, kind); a reader sums both tables in one statement, so a
-- fold running meanwhile changes nothing it sees. Events are delivery_log's, plus breaker_<state>
-- for each circuit-breaker transition recorded in webhook_health.
SET LOCAL search_path TO alert_delivery, public;

CREATE TABLE delivery_counts (
    event    text NOT NULL,
    kind     text NOT NULL,
    n        bigint NOT NULL,
    attempts bigint NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE delivery_counts IS
    'Unfolded counter increments: one row per (statement, event, kind); see delivery_counters.';
COMMENT ON COLUMN delivery_counts.kind IS
    'Webhook kind at logging time; none when the row has no webhook, unknown when it is gone.';
COMMENT ON COLUMN delivery_counts.attempts IS
    'Rows that were HTTP/SMTP attempts (an attempt event with a latency).';

CREATE TABLE delivery_counters (
    event     text NOT NULL,
    kind      text NOT NULL,
    n         bigint NOT NULL DEFAULT 0,
    attempts  bigint NOT NULL DEFAULT 0,
    folded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event, kind)
);
COMMENT ON TABLE delivery_counters IS
    'Lifetime counts per (event, kind), never decreasing; the total is this plus delivery_counts.';

-- Numbers the trigger's statements: every 1,000th one folds, so the insert-only table stays
-- small even when no exporter scrapes.
CREATE SEQUENCE delivery_counts_statements;

-- An upgraded database starts from the log it holds, so the counters equal the lifetime count of
-- each event (same classification as the trigger).
INSERT INTO delivery_counters (event, kind, n, attempts)
SELECT l.event,
       CASE WHEN l.webhook_id IS NULL THEN 'none' ELSE coalesce(w.kind, 'unknown') END,
       count(*),
       count(*) FILTER (WHERE l.latency_ms IS NOT NULL
                          AND l.event IN ('attempt', 'delivered', 'failed', 'retry_scheduled',
                                          'dead_lettered'))
FROM delivery_log l
LEFT JOIN webhooks w ON w.webhook_id = l.webhook_id
GROUP BY 1, 2;
