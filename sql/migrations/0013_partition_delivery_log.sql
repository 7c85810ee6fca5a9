-- delivery_log partitioned by time: RANGE on created_at, one partition per UTC day, so retention
-- drops whole partitions (no DELETE, no vacuum debt) and time-range readers prune to the days they
-- read. Every existing row is kept: the old table's rows move into the new one with their log_id,
-- and the identity continues from the old sequence.
--
-- Partitions created here with plain DDL (functions are applied after the migrations):
--   delivery_log_history   [MINVALUE, today)   every row logged before this upgrade, dropped
--                                              whole once today is older than the retention;
--   delivery_log_pYYYYMMDD [day, day + 1)       today and the next 7 days;
--   delivery_log_default   DEFAULT              anything outside (a clock far ahead).
-- alert_delivery.ensure_log_partitions() and alert_delivery.drop_expired_log_partitions()
-- (sql/functions/10_partitions.sql) maintain them; the Dagster schedule log_partitions runs both.
--
-- The views that read delivery_log bind to the table, so they are dropped and recreated with
-- their definitions from 0003 (alert_suppressions) and 0005 (v_webhook_performance). The
-- statement-level counting trigger (sql/functions/09_counters.sql) goes with the old table and is
-- re-attached to the new one when the function files are re-applied after this migration.
SET LOCAL search_path TO alert_delivery, public;

DROP VIEW alert_suppressions;
DROP VIEW v_webhook_performance;

ALTER TABLE delivery_log RENAME TO delivery_log_unpartitioned;
ALTER SEQUENCE delivery_log_log_id_seq RENAME TO delivery_log_unpartitioned_log_id_seq;

CREATE TABLE delivery_log (
    log_id      bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME delivery_log_log_id_seq),
    delivery_id bigint,
    alert_id    bigint,
    webhook_id  bigint,
    event       text NOT NULL,
    attempt     integer,
    http_status integer,
    latency_ms  double precision,
    detail      text,
    run_id      text,
    worker_id   text,
    created_at  timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (created_at);

DO $$
DECLARE
    today timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    day timestamptz;
BEGIN
    EXECUTE format('CREATE TABLE alert_delivery.delivery_log_history PARTITION OF'
                   ' alert_delivery.delivery_log FOR VALUES FROM (MINVALUE) TO (%L)', today);
    FOR i IN 0..7 LOOP
        day := today + make_interval(days => i);
        EXECUTE format('CREATE TABLE alert_delivery.%I PARTITION OF alert_delivery.delivery_log'
                       ' FOR VALUES FROM (%L) TO (%L)',
                       'delivery_log_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'),
                       day, day + interval '1 day');
    END LOOP;
END
$$;
CREATE TABLE delivery_log_default PARTITION OF delivery_log DEFAULT;

INSERT INTO delivery_log (log_id, delivery_id, alert_id, webhook_id, event, attempt, http_status,
                          latency_ms, detail, run_id, worker_id, created_at)
OVERRIDING SYSTEM VALUE
SELECT log_id, delivery_id, alert_id, webhook_id, event, attempt, http_status, latency_ms, detail,
       run_id, worker_id, created_at
FROM delivery_log_unpartitioned;

SELECT setval('delivery_log_log_id_seq', s.last_value, s.is_called)
FROM delivery_log_unpartitioned_log_id_seq s;

DROP TABLE delivery_log_unpartitioned;

-- The primary key of a partitioned table must include the partition key.
ALTER TABLE delivery_log ADD CONSTRAINT delivery_log_pkey PRIMARY KEY (log_id, created_at);
CREATE INDEX delivery_log_delivery ON delivery_log (delivery_id);
CREATE INDEX delivery_log_created_brin ON delivery_log USING brin (created_at);
CREATE INDEX delivery_log_webhook_created ON delivery_log (webhook_id, created_at);

-- As in 0003.
CREATE VIEW alert_suppressions AS
SELECT l.log_id, l.created_at, l.alert_id, substr(l.event, 12) AS reason, l.detail,
       a.operation_type, a.alert_type, a.severity, a.title
FROM alert_delivery.delivery_log l LEFT JOIN alert_delivery.alerts a ON a.alert_id = l.alert_id
WHERE l.event LIKE 'suppressed\_%';

-- As in 0005. The 24-hour window prunes to the last two daily partitions.
CREATE VIEW v_webhook_performance AS
SELECT w.webhook_id,
       w.name,
       w.kind,
       w.active,
       coalesce(h.breaker_state, 'closed') AS breaker_state,
       coalesce(h.total, 0) AS total,
       coalesce(h.succeeded, 0) AS succeeded,
       coalesce(h.failed, 0) AS failed,
       round((100.0 * h.succeeded / nullif(h.total, 0))::numeric, 2) AS success_rate_pct,
       h.avg_latency_ms,
       h.p95_latency_ms,
       l.delivered_24h,
       l.failed_24h,
       l.retries_24h,
       l.dead_lettered_24h,
       l.p50_latency_ms_24h,
       l.p95_latency_ms_24h,
       l.p99_latency_ms_24h
FROM webhooks w
LEFT JOIN webhook_health h ON h.webhook_id = w.webhook_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE g.event = 'delivered') AS delivered_24h,
           count(*) FILTER (WHERE g.event IN ('failed', 'retry_scheduled', 'dead_lettered')
                            AND g.latency_ms IS NOT NULL) AS failed_24h,
           count(*) FILTER (WHERE g.event = 'retry_scheduled') AS retries_24h,
           count(*) FILTER (WHERE g.event = 'dead_lettered') AS dead_lettered_24h,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY g.latency_ms) AS p50_latency_ms_24h,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY g.latency_ms) AS p95_latency_ms_24h,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY g.latency_ms) AS p99_latency_ms_24h
    FROM delivery_log g
    WHERE g.webhook_id = w.webhook_id AND g.created_at >= now() - interval '24 hours'
) l ON true;
