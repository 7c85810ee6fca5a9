-- Detection: versioned baselines, operation families and the dashboard views.
-- Depends on 0001 only.
SET LOCAL search_path TO alert_delivery, public;

-- Every baseline ever computed, keyed by its window. Anomaly detection of an hourly partition reads
-- the version whose window ends at the start of the partition's UTC day, so a live run and a later
-- backfill judge the same hour against the same numbers, and a spike never inflates the baseline
-- it is judged against. `baselines` stays the active (latest) one per operation.
CREATE TABLE baseline_versions (
    operation_type text NOT NULL,
    window_end     timestamptz NOT NULL,
    window_days    integer NOT NULL CHECK (window_days BETWEEN 1 AND 365),
    window_start   timestamptz NOT NULL,
    p50_ms         double precision NOT NULL,
    p95_ms         double precision NOT NULL,
    p99_ms         double precision NOT NULL,
    mean_ms        double precision NOT NULL,
    stddev_ms      double precision NOT NULL,
    samples        integer NOT NULL CHECK (samples >= 10),
    run_id         bigint REFERENCES baseline_runs (run_id) ON DELETE SET NULL,
    calculated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (operation_type, window_end, window_days),
    CHECK (p50_ms <= p95_ms AND p95_ms <= p99_ms)
);

CREATE INDEX correlations_strong ON correlations (partition_start, pearson_r)
    WHERE pearson_r >= 0.75;

-- Operation families, a default copy of alert_delivery.detection.bottlenecks.DEFAULT_FAMILIES for
-- the SQL views; Python callers may pass their own map.
CREATE TABLE operation_families (
    pattern         text PRIMARY KEY,
    family          text NOT NULL,
    bottleneck_type text NOT NULL
);
INSERT INTO operation_families (pattern, family, bottleneck_type) VALUES
    ('merge%', 'merge', 'MERGE_PIPELINE_SATURATION'),
    ('rebase%', 'merge', 'MERGE_PIPELINE_SATURATION'),
    ('cherry_pick%', 'merge', 'MERGE_PIPELINE_SATURATION'),
    ('conflict%', 'merge', 'MERGE_PIPELINE_SATURATION'),
    ('object_store%', 'object_storage', 'OBJECT_STORAGE_IO'),
    ('blob%', 'object_storage', 'OBJECT_STORAGE_IO'),
    ('pack%', 'object_storage', 'OBJECT_STORAGE_IO'),
    ('query_cache%', 'query_cache', 'QUERY_CACHE_PRESSURE'),
    ('cache%', 'query_cache', 'QUERY_CACHE_PRESSURE'),
    ('wal%', 'transaction_log', 'TRANSACTION_LOG_SATURATION'),
    ('commit%', 'transaction_log', 'TRANSACTION_LOG_SATURATION'),
    ('checkpoint%', 'transaction_log', 'TRANSACTION_LOG_SATURATION'),
    ('txn%', 'transaction_log', 'TRANSACTION_LOG_SATURATION');

CREATE FUNCTION operation_family(op text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT f.family FROM alert_delivery.operation_families f
         WHERE op LIKE f.pattern ORDER BY length(f.pattern) DESC, f.pattern LIMIT 1),
        'other')
$$;

CREATE VIEW recent_anomalies AS
SELECT anomaly_id, partition_start, partition_end, operation_type, anomaly_type, severity,
       z_score, p99_ratio, samples, observed_mean_ms, observed_p99_ms, baseline_mean_ms,
       baseline_p99_ms, detected_at
FROM anomalies
WHERE partition_start >= now() - interval '24 hours'
ORDER BY partition_start DESC,
         CASE severity WHEN 'CRITICAL' THEN 0 WHEN 'WARNING' THEN 1 ELSE 2 END,
         operation_type;

CREATE VIEW anomaly_details AS
SELECT a.anomaly_id, a.partition_start, a.partition_end, a.operation_type,
       operation_family(a.operation_type) AS family, a.anomaly_type, a.severity, a.z_score,
       a.p99_ratio, a.samples, a.observed_mean_ms, a.observed_p99_ms, a.baseline_mean_ms,
       a.baseline_stddev_ms, a.baseline_p99_ms,
       CASE WHEN a.baseline_mean_ms > 0 THEN a.observed_mean_ms / a.baseline_mean_ms END
           AS mean_ratio,
       a.metric_id AS worst_metric_id, a.duration_ms AS worst_duration_ms,
       m.status AS worst_status, m.recorded_at AS worst_recorded_at,
       m.attributes AS worst_attributes, a.detected_at
FROM anomalies a
LEFT JOIN performance_metrics m ON m.metric_id = a.metric_id;

CREATE VIEW active_correlations AS
SELECT correlation_id, partition_start, window_start, window_end, operation_a, operation_b,
       pearson_r, samples, confidence, both_degraded, bottleneck_type, recommendation, detected_at
FROM correlations
WHERE pearson_r >= 0.75 AND partition_start >= now() - interval '24 hours';

CREATE VIEW bottleneck_summary AS
SELECT bottleneck_type,
       count(*) AS pairs,
       count(DISTINCT partition_start) AS partitions,
       max(pearson_r) AS max_r,
       avg(pearson_r) AS avg_r,
       min(partition_start) AS first_seen,
       max(partition_start) AS last_seen,
       array_agg(DISTINCT operation_a || ' ~ ' || operation_b) AS operation_pairs,
       min(recommendation) AS recommendation
FROM correlations
WHERE bottleneck_type IS NOT NULL
GROUP BY bottleneck_type;

-- Per family and UTC day: volume, outcome rates (from `status`) and the duration trend against
-- the previous day.
CREATE VIEW operation_family_summary AS
WITH daily AS (
    SELECT operation_family(operation_type) AS family,
           date_trunc('day', hour, 'UTC') AS day,
           sum(samples) AS samples,
           sum(success_count) AS success_count,
           sum(conflict_count) AS conflict_count,
           sum(failed_count) AS failed_count,
           sum(mean_ms * samples) / nullif(sum(samples), 0) AS mean_ms,
           max(p95_ms) AS max_hourly_p95_ms
    FROM metric_rollups_hourly
    GROUP BY 1, 2
)
SELECT family, day, samples, success_count, conflict_count, failed_count,
       success_count::double precision / nullif(samples, 0) AS success_rate,
       conflict_count::double precision / nullif(samples, 0) AS conflict_rate,
       failed_count::double precision / nullif(samples, 0) AS failure_rate,
       mean_ms, max_hourly_p95_ms,
       lag(mean_ms) OVER w AS previous_mean_ms,
       100 * (mean_ms - lag(mean_ms) OVER w) / nullif(lag(mean_ms) OVER w, 0)
           AS mean_change_pct
FROM daily
WINDOW w AS (PARTITION BY family ORDER BY day);
