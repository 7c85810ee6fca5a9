-- Named queries of alert_delivery.detection (loaded with alert_delivery.db.query).
-- What detection reads sums means and deviations as numeric: exact, so independent of scan order
-- and parallel plans, which keeps a backfill bit-for-bit equal to the live run.

-- name: operation_types
-- Loose index scan over (operation_type, recorded_at): one probe per operation, not a full scan.
WITH RECURSIVE ops AS (
    (SELECT operation_type FROM alert_delivery.performance_metrics
     ORDER BY operation_type LIMIT 1)
    UNION ALL
    SELECT (SELECT m.operation_type FROM alert_delivery.performance_metrics m
            WHERE m.operation_type > ops.operation_type ORDER BY m.operation_type LIMIT 1)
    FROM ops WHERE ops.operation_type IS NOT NULL
)
SELECT operation_type FROM ops WHERE operation_type IS NOT NULL
UNION
SELECT operation_type FROM alert_delivery.baselines
ORDER BY 1;

-- name: baseline_stats
-- One pass over the window for every operation: a per-operation index scan would visit the
-- pages of all operations once per operation, rows being interleaved in time.
-- Plain float8 sums here (numeric triples the cost); the versions detection reads are immutable
-- once written, so last-bit differences never reach a backfill.
-- Grouping under "C" sorts by bytes, cheaper than a linguistic collation for a million rows.
SELECT operation_type COLLATE "C", count(*)::int,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms),
       avg(duration_ms),
       coalesce(stddev_samp(duration_ms), 0)
FROM alert_delivery.performance_metrics
WHERE recorded_at >= %(start)s AND recorded_at < %(end)s
GROUP BY 1;

-- name: current_limits
SELECT current_setting('statement_timeout'), current_setting('work_mem');

-- name: set_limits
-- Transaction-local; restored explicitly because a released savepoint keeps them until commit.
SELECT set_config('statement_timeout', %(timeout)s, true), set_config('work_mem', %(work_mem)s, true);

-- name: active_baselines
SELECT operation_type, p50_ms, p95_ms, p99_ms, mean_ms FROM alert_delivery.baselines;

-- name: upsert_baseline
INSERT INTO alert_delivery.baselines AS b (operation_type, p50_ms, p95_ms, p99_ms, mean_ms,
    stddev_ms, samples, window_start, window_end, window_days, run_id)
VALUES (%(op)s, %(p50)s, %(p95)s, %(p99)s, %(mean)s, %(stddev)s, %(samples)s, %(start)s,
    %(end)s, %(days)s, %(run_id)s)
ON CONFLICT (operation_type) DO UPDATE SET
    p50_ms = EXCLUDED.p50_ms, p95_ms = EXCLUDED.p95_ms, p99_ms = EXCLUDED.p99_ms,
    mean_ms = EXCLUDED.mean_ms, stddev_ms = EXCLUDED.stddev_ms, samples = EXCLUDED.samples,
    window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,
    window_days = EXCLUDED.window_days, run_id = EXCLUDED.run_id, calculated_at = now();

-- name: upsert_baseline_version
INSERT INTO alert_delivery.baseline_versions (operation_type, window_end, window_days,
    window_start, p50_ms, p95_ms, p99_ms, mean_ms, stddev_ms, samples, run_id)
VALUES (%(op)s, %(end)s, %(days)s, %(start)s, %(p50)s, %(p95)s, %(p99)s, %(mean)s, %(stddev)s,
    %(samples)s, %(run_id)s)
-- A version is immutable: hours already judged against it keep being judged the same way.
ON CONFLICT (operation_type, window_end, window_days) DO NOTHING;

-- name: insert_baseline_history
INSERT INTO alert_delivery.baseline_history (operation_type, run_id, old_p50_ms, old_p95_ms,
    old_p99_ms, old_mean_ms, new_p50_ms, new_p95_ms, new_p99_ms, new_mean_ms, p50_change_pct,
    p95_change_pct, p99_change_pct, mean_change_pct)
VALUES (%(op)s, %(run_id)s, %(old_p50)s, %(old_p95)s, %(old_p99)s, %(old_mean)s, %(p50)s,
    %(p95)s, %(p99)s, %(mean)s, %(p50_pct)s, %(p95_pct)s, %(p99_pct)s, %(mean_pct)s);

-- name: start_baseline_run
INSERT INTO alert_delivery.baseline_runs (window_days, window_end, dagster_run_id)
VALUES (%(days)s, %(end)s, %(dagster_run_id)s)
RETURNING run_id;

-- name: finish_baseline_run
UPDATE alert_delivery.baseline_runs
SET finished_at = clock_timestamp(), status = %(status)s, operations = %(operations)s,
    updated = %(updated)s, kept = %(kept)s, skipped = %(skipped)s, failed = %(failed)s,
    errors = %(errors)s
WHERE run_id = %(run_id)s;

-- name: delete_rollups
DELETE FROM alert_delivery.metric_rollups_hourly WHERE hour >= %(start)s AND hour < %(end)s;

-- name: insert_rollups
INSERT INTO alert_delivery.metric_rollups_hourly (operation_type, hour, samples, mean_ms,
    stddev_ms, p50_ms, p95_ms, p99_ms, max_ms, success_count, conflict_count, failed_count)
SELECT operation_type, hour, samples, mean_ms, stddev_ms, q[1], q[2], q[3], max_ms, ok, conflicts,
       failures
FROM (
    SELECT operation_type, date_trunc('hour', recorded_at, 'UTC') AS hour, count(*) AS samples,
           avg(duration_ms::numeric)::float8 AS mean_ms,
           stddev_samp(duration_ms::numeric)::float8 AS stddev_ms,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) AS q,
           max(duration_ms) AS max_ms,
           count(*) FILTER (WHERE status = 'success') AS ok,
           count(*) FILTER (WHERE status = 'conflict') AS conflicts,
           count(*) FILTER (WHERE status = 'failed') AS failures
    FROM alert_delivery.performance_metrics
    WHERE recorded_at >= %(start)s AND recorded_at < %(end)s
    GROUP BY 1, 2
) AS hourly
-- Backfill runs in parallel may fill the same hour (a partition and its neighbour's lookback).
ON CONFLICT (operation_type, hour) DO UPDATE SET
    samples = EXCLUDED.samples, mean_ms = EXCLUDED.mean_ms, stddev_ms = EXCLUDED.stddev_ms,
    p50_ms = EXCLUDED.p50_ms, p95_ms = EXCLUDED.p95_ms, p99_ms = EXCLUDED.p99_ms,
    max_ms = EXCLUDED.max_ms, success_count = EXCLUDED.success_count,
    conflict_count = EXCLUDED.conflict_count, failed_count = EXCLUDED.failed_count,
    computed_at = now();

-- name: missing_rollup_hours
SELECT h FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 hour',
                              interval '1 hour') AS h
WHERE NOT EXISTS (SELECT 1 FROM alert_delivery.metric_rollups_hourly r WHERE r.hour = h)
ORDER BY h;

-- name: partition_stats
SELECT operation_type, count(*)::int, avg(duration_ms::numeric)::float8,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms),
       (array_agg(metric_id ORDER BY duration_ms DESC, metric_id))[1],
       max(duration_ms)
FROM alert_delivery.performance_metrics
WHERE recorded_at >= %(start)s AND recorded_at < %(end)s
GROUP BY operation_type
ORDER BY operation_type;

-- name: baseline_versions_for
SELECT operation_type, mean_ms, stddev_ms, p99_ms, samples
FROM alert_delivery.baseline_versions
WHERE window_end = %(end)s AND window_days = %(days)s AND operation_type = ANY(%(ops)s);

-- name: compute_baseline_versions
-- The same statistics as baseline_stats, so a version is identical whoever computed it first.
INSERT INTO alert_delivery.baseline_versions (operation_type, window_end, window_days,
    window_start, p50_ms, p95_ms, p99_ms, mean_ms, stddev_ms, samples)
SELECT operation_type, %(end)s, %(days)s, %(start)s, q[1], q[2], q[3], mean_ms, stddev_ms, n
FROM (
    SELECT operation_type, count(*)::int AS n,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) AS q,
           avg(duration_ms::numeric)::float8 AS mean_ms,
           coalesce(stddev_samp(duration_ms::numeric), 0)::float8 AS stddev_ms
    FROM alert_delivery.performance_metrics
    WHERE operation_type = ANY(%(ops)s) AND recorded_at >= %(start)s AND recorded_at < %(end)s
    GROUP BY operation_type
    HAVING count(*) >= %(min_samples)s
) AS stats
ON CONFLICT DO NOTHING;

-- name: upsert_anomaly
INSERT INTO alert_delivery.anomalies AS a (partition_start, partition_end, operation_type,
    anomaly_type, severity, z_score, p99_ratio, samples, observed_mean_ms, observed_p99_ms,
    baseline_mean_ms, baseline_stddev_ms, baseline_p99_ms, metric_id, duration_ms, baseline_ms)
VALUES (%(start)s, %(end)s, %(op)s, %(type)s, %(severity)s, %(z)s, %(ratio)s, %(samples)s,
    %(mean)s, %(p99)s, %(b_mean)s, %(b_stddev)s, %(b_p99)s, %(metric_id)s, %(duration)s,
    %(b_mean)s)
ON CONFLICT (partition_start, operation_type) DO UPDATE SET
    partition_end = EXCLUDED.partition_end, anomaly_type = EXCLUDED.anomaly_type,
    severity = EXCLUDED.severity, z_score = EXCLUDED.z_score, p99_ratio = EXCLUDED.p99_ratio,
    samples = EXCLUDED.samples, observed_mean_ms = EXCLUDED.observed_mean_ms,
    observed_p99_ms = EXCLUDED.observed_p99_ms, baseline_mean_ms = EXCLUDED.baseline_mean_ms,
    baseline_stddev_ms = EXCLUDED.baseline_stddev_ms, baseline_p99_ms = EXCLUDED.baseline_p99_ms,
    metric_id = EXCLUDED.metric_id, duration_ms = EXCLUDED.duration_ms,
    baseline_ms = EXCLUDED.baseline_ms, detected_at = now()
-- Re-running an unchanged partition must not touch the row (ids and detected_at stay).
WHERE (a.partition_end, a.anomaly_type, a.severity, a.z_score, a.p99_ratio, a.samples,
       a.observed_mean_ms, a.observed_p99_ms, a.baseline_mean_ms, a.baseline_stddev_ms,
       a.baseline_p99_ms, a.metric_id, a.duration_ms)
      IS DISTINCT FROM
      (EXCLUDED.partition_end, EXCLUDED.anomaly_type, EXCLUDED.severity, EXCLUDED.z_score,
       EXCLUDED.p99_ratio, EXCLUDED.samples, EXCLUDED.observed_mean_ms, EXCLUDED.observed_p99_ms,
       EXCLUDED.baseline_mean_ms, EXCLUDED.baseline_stddev_ms, EXCLUDED.baseline_p99_ms,
       EXCLUDED.metric_id, EXCLUDED.duration_ms);

-- name: delete_stale_anomalies
DELETE FROM alert_delivery.anomalies
WHERE partition_start = %(start)s AND NOT (operation_type = ANY(%(ops)s));

-- name: rollup_series
SELECT operation_type, hour, p95_ms FROM alert_delivery.metric_rollups_hourly
WHERE hour >= %(start)s AND hour < %(end)s
ORDER BY operation_type, hour;

-- name: degraded_operations
SELECT operation_type FROM alert_delivery.anomalies
WHERE partition_start = %(start)s AND severity IN ('WARNING', 'CRITICAL');

-- name: upsert_correlations
INSERT INTO alert_delivery.correlations AS c (partition_start, window_start, window_end,
    operation_a, operation_b, pearson_r, samples, confidence, both_degraded, bottleneck_type,
    recommendation)
SELECT %(partition_start)s, %(window_start)s, %(window_end)s, u.a, u.b, u.r, u.n, u.conf, u.deg,
       u.kind, u.rec
FROM unnest(%(a)s::text[], %(b)s::text[], %(r)s::float8[], %(n)s::int[], %(conf)s::float8[],
            %(deg)s::bool[], %(kind)s::text[], %(rec)s::text[]) AS u(a, b, r, n, conf, deg, kind, rec)
ON CONFLICT (partition_start, operation_a, operation_b) DO UPDATE SET
    window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,
    pearson_r = EXCLUDED.pearson_r, samples = EXCLUDED.samples, confidence = EXCLUDED.confidence,
    both_degraded = EXCLUDED.both_degraded, bottleneck_type = EXCLUDED.bottleneck_type,
    recommendation = EXCLUDED.recommendation, detected_at = now()
WHERE (c.window_start, c.window_end, c.pearson_r, c.samples, c.confidence, c.both_degraded,
       c.bottleneck_type, c.recommendation)
      IS DISTINCT FROM
      (EXCLUDED.window_start, EXCLUDED.window_end, EXCLUDED.pearson_r, EXCLUDED.samples,
       EXCLUDED.confidence, EXCLUDED.both_degraded, EXCLUDED.bottleneck_type,
       EXCLUDED.recommendation);

-- name: delete_stale_correlations
DELETE FROM alert_delivery.correlations c
WHERE c.partition_start = %(partition_start)s
  AND (c.operation_a, c.operation_b) NOT IN (
      SELECT u.a, u.b FROM unnest(%(a)s::text[], %(b)s::text[]) AS u(a, b));

-- name: check_percentile_ordering
SELECT operation_type FROM alert_delivery.baselines
WHERE NOT (p50_ms <= p95_ms AND p95_ms <= p99_ms) ORDER BY 1;

-- name: check_min_samples
SELECT operation_type FROM alert_delivery.baselines WHERE samples < %(min_samples)s ORDER BY 1;

-- name: check_future_metrics
SELECT count(*) FROM alert_delivery.performance_metrics
WHERE recorded_at > %(limit)s;

-- name: check_anomaly_metrics
SELECT a.operation_type FROM alert_delivery.anomalies a
WHERE a.partition_start = %(start)s
  AND (a.metric_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM alert_delivery.performance_metrics m
      WHERE m.metric_id = a.metric_id AND m.operation_type = a.operation_type
        AND m.recorded_at >= a.partition_start AND m.recorded_at < a.partition_end))
ORDER BY 1;

-- name: partition_anomalies
SELECT operation_type, anomaly_type, severity, z_score, p99_ratio, samples, observed_mean_ms,
       observed_p99_ms, baseline_mean_ms, baseline_p99_ms
FROM alert_delivery.anomalies WHERE partition_start = %(start)s
ORDER BY CASE severity WHEN 'CRITICAL' THEN 0 WHEN 'WARNING' THEN 1 ELSE 2 END,
         coalesce(p99_ratio, 0) DESC, operation_type;

-- name: baseline_table
SELECT operation_type, samples, p50_ms, p95_ms, p99_ms, mean_ms, stddev_ms
FROM alert_delivery.baselines ORDER BY operation_type;

-- name: rollup_trend
SELECT operation_type, hour, mean_ms FROM alert_delivery.metric_rollups_hourly
WHERE operation_type = ANY(%(ops)s) AND hour >= %(start)s AND hour < %(end)s
ORDER BY operation_type, hour;
