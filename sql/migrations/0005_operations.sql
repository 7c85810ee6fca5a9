-- Operations: dashboard views over the tables of 0001 only (other migrations may not be applied).
-- Views are named v_<name>; delivery windows are the last 24 hours, alert windows the last 7 days,
-- so a dashboard query stays cheap as the tables grow.
SET LOCAL search_path TO alert_delivery, public;

-- Per-alert response SLA: time to acknowledge against the target of its severity.
-- CRITICAL 5 min, WARNING 15 min; INFO has no target. An alert resolved before anyone
-- acknowledged it is counted apart, not as a breach (it healed itself).
CREATE VIEW v_response_sla_alerts AS
SELECT a.alert_id,
       a.severity,
       a.operation_type,
       a.alert_type,
       a.status,
       a.created_at,
       a.acknowledged_at,
       a.acknowledged_by,
       t.target_s,
       extract(epoch FROM a.acknowledged_at - a.created_at)::double precision AS time_to_ack_s,
       CASE
           WHEN t.target_s IS NULL THEN 'no_target'
           WHEN a.acknowledged_at IS NOT NULL THEN
               CASE WHEN a.acknowledged_at - a.created_at <= make_interval(secs => t.target_s)
                    THEN 'met' ELSE 'breached' END
           WHEN a.resolved_at IS NOT NULL THEN 'resolved_unacknowledged'
           WHEN now() - a.created_at > make_interval(secs => t.target_s) THEN 'breached'
           ELSE 'open'
       END AS sla_state
FROM alerts a
LEFT JOIN (VALUES ('CRITICAL', 300), ('WARNING', 900)) AS t (severity, target_s)
       ON t.severity = a.severity;

CREATE VIEW v_response_sla AS
SELECT s.severity,
       t.target_s,
       count(r.alert_id) AS alerts,
       count(r.acknowledged_at) AS acknowledged,
       count(*) FILTER (WHERE r.sla_state = 'met') AS met,
       count(*) FILTER (WHERE r.sla_state = 'breached') AS breached,
       count(*) FILTER (WHERE r.sla_state = 'open') AS open,
       count(*) FILTER (WHERE r.sla_state = 'resolved_unacknowledged') AS resolved_unacknowledged,
       round((100.0 * count(*) FILTER (WHERE r.sla_state = 'met')
              / nullif(count(*) FILTER (WHERE r.sla_state IN ('met', 'breached')), 0))::numeric, 2)
           AS compliance_pct,
       avg(r.time_to_ack_s) AS avg_time_to_ack_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.time_to_ack_s) AS p50_time_to_ack_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.time_to_ack_s) AS p95_time_to_ack_s,
       max(r.time_to_ack_s) AS max_time_to_ack_s
FROM (VALUES ('CRITICAL'), ('WARNING'), ('INFO')) AS s (severity)
LEFT JOIN (VALUES ('CRITICAL', 300), ('WARNING', 900)) AS t (severity, target_s)
       ON t.severity = s.severity
LEFT JOIN v_response_sla_alerts r
       ON r.severity = s.severity AND r.created_at >= now() - interval '7 days'
GROUP BY s.severity, t.target_s;

-- Queue: one row per status (zero rows still listed), with due work and expired leases.
CREATE VIEW v_queue_health AS
SELECT s.status,
       count(q.delivery_id) AS depth,
       min(q.created_at) AS oldest_created_at,
       coalesce(extract(epoch FROM now() - min(q.created_at)), 0)::double precision AS oldest_age_s,
       count(*) FILTER (WHERE q.status IN ('pending', 'in_flight') AND q.next_attempt_at <= now())
           AS due_now,
       count(*) FILTER (WHERE q.status = 'in_flight' AND q.leased_until < now()) AS expired_leases,
       coalesce(max(q.attempts), 0) AS max_attempts,
       coalesce(round(avg(q.attempts)::numeric, 2), 0) AS avg_attempts
FROM (VALUES ('pending'), ('in_flight'), ('delivered'), ('dead')) AS s (status)
LEFT JOIN delivery_queue q ON q.status = s.status
GROUP BY s.status;

-- Webhooks needing attention: unhealthy, breaker not closed, or disabled.
CREATE VIEW v_degraded_webhooks AS
SELECT w.webhook_id,
       w.name,
       w.kind,
       w.active,
       w.disabled_reason,
       coalesce(h.status, 'healthy') AS health_status,
       coalesce(h.breaker_state, 'closed') AS breaker_state,
       h.breaker_opened_at,
       coalesce(h.consecutive_failures, 0) AS consecutive_failures,
       h.last_success_at,
       h.last_failure_at,
       h.last_error,
       (SELECT count(*) FROM delivery_queue d
         WHERE d.webhook_id = w.webhook_id AND d.status = 'dead') AS dead_letters,
       (SELECT count(*) FROM delivery_queue p
         WHERE p.webhook_id = w.webhook_id AND p.status IN ('pending', 'in_flight')) AS pending
FROM webhooks w
LEFT JOIN webhook_health h ON h.webhook_id = w.webhook_id
WHERE NOT w.active
   OR coalesce(h.status, 'healthy') <> 'healthy'
   OR coalesce(h.breaker_state, 'closed') <> 'closed';

-- Per webhook: lifetime counters from webhook_health plus the last 24 hours of delivery_log.
-- An attempt is a log row with a latency (the engine logs it under its outcome), so failed_24h
-- counts the retry_scheduled / dead_lettered attempts; bookkeeping rows carry no latency.
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

-- Channel = webhooks.kind; outcome of the queue rows created in the last 24 hours.
CREATE VIEW v_delivery_success_by_channel AS
SELECT k.kind AS channel,
       count(q.delivery_id) AS deliveries,
       count(*) FILTER (WHERE q.status = 'delivered') AS delivered,
       count(*) FILTER (WHERE q.status = 'dead') AS dead,
       count(*) FILTER (WHERE q.status IN ('pending', 'in_flight')) AS in_progress,
       coalesce(sum(greatest(q.attempts - 1, 0)), 0) AS retries,
       round((100.0 * count(*) FILTER (WHERE q.status = 'delivered')
              / nullif(count(*) FILTER (WHERE q.status IN ('delivered', 'dead')), 0))::numeric, 2)
           AS success_rate_pct
FROM (VALUES ('slack'), ('mattermost'), ('pagerduty'), ('email'), ('webhook'), ('inbox'))
     AS k (kind)
LEFT JOIN webhooks w ON w.kind = k.kind
LEFT JOIN delivery_queue q
       ON q.webhook_id = w.webhook_id AND q.created_at >= now() - interval '24 hours'
GROUP BY k.kind;

-- Hourly rollups of the last 7 days, with the change against the previous hour and the baseline.
CREATE VIEW v_operation_performance_trend AS
SELECT r.operation_type,
       r.hour,
       r.samples,
       r.mean_ms,
       r.p50_ms,
       r.p95_ms,
       r.p99_ms,
       r.failed_count,
       round((100.0 * (r.p95_ms - lag(r.p95_ms) OVER w)
              / nullif(lag(r.p95_ms) OVER w, 0))::numeric, 2) AS p95_change_pct,
       b.p95_ms AS baseline_p95_ms,
       round((100.0 * (r.p95_ms - b.p95_ms) / nullif(b.p95_ms, 0))::numeric, 2)
           AS p95_vs_baseline_pct
FROM metric_rollups_hourly r
LEFT JOIN baselines b ON b.operation_type = r.operation_type
WHERE r.hour >= now() - interval '7 days'
WINDOW w AS (PARTITION BY r.operation_type ORDER BY r.hour);

CREATE VIEW v_alert_frequency_by_operation AS
SELECT a.operation_type,
       count(*) AS alerts_7d,
       count(*) FILTER (WHERE a.created_at >= now() - interval '24 hours') AS alerts_24h,
       count(*) FILTER (WHERE a.severity = 'CRITICAL') AS critical_7d,
       count(*) FILTER (WHERE a.severity = 'WARNING') AS warning_7d,
       count(*) FILTER (WHERE a.severity = 'INFO') AS info_7d,
       count(*) FILTER (WHERE a.status = 'firing') AS firing,
       sum(a.occurrences) AS occurrences_7d,
       max(a.created_at) AS last_alert_at
FROM alerts a
WHERE a.created_at >= now() - interval '7 days'
GROUP BY a.operation_type;

-- Every silence with its state and how many alerts it could have matched while it ran.
CREATE VIEW v_silences_audit AS
SELECT s.silence_id,
       s.operation_type,
       s.alert_type,
       s.starts_at,
       s.ends_at,
       s.expired_at,
       s.reason,
       s.created_by,
       s.created_at,
       CASE
           WHEN s.expired_at IS NOT NULL THEN 'expired'
           WHEN now() < s.starts_at THEN 'scheduled'
           WHEN now() < s.ends_at THEN 'active'
           ELSE 'ended'
       END AS state,
       extract(epoch FROM least(s.ends_at, coalesce(s.expired_at, s.ends_at)) - s.starts_at)
           ::double precision AS effective_duration_s,
       (SELECT count(*) FROM alerts a
         WHERE (s.operation_type = 'ALL' OR a.operation_type = s.operation_type)
           AND (s.alert_type = 'ALL' OR a.alert_type = s.alert_type)
           AND a.created_at >= s.starts_at
           AND a.created_at < least(s.ends_at, coalesce(s.expired_at, s.ends_at)))
           AS matching_alerts
FROM silences s;

-- Each recalculation's change with a size class and the anomalies in the day before / after.
CREATE VIEW v_baseline_change_impact AS
SELECT h.history_id,
       h.operation_type,
       h.run_id,
       r.status AS run_status,
       h.recorded_at,
       h.old_p95_ms,
       h.new_p95_ms,
       h.p95_change_pct,
       h.p99_change_pct,
       h.mean_change_pct,
       CASE
           WHEN h.old_p95_ms IS NULL THEN 'initial'
           WHEN abs(h.p95_change_pct) >= 50 THEN 'major'
           WHEN abs(h.p95_change_pct) >= 20 THEN 'moderate'
           ELSE 'minor'
       END AS impact,
       (SELECT count(*) FROM anomalies n
         WHERE n.operation_type = h.operation_type
           AND n.partition_start >= h.recorded_at - interval '24 hours'
           AND n.partition_start < h.recorded_at) AS anomalies_24h_before,
       (SELECT count(*) FROM anomalies n
         WHERE n.operation_type = h.operation_type
           AND n.partition_start >= h.recorded_at
           AND n.partition_start < h.recorded_at + interval '24 hours') AS anomalies_24h_after
FROM baseline_history h
LEFT JOIN baseline_runs r ON r.run_id = h.run_id;

-- Per operation: its active baseline's age, or 'missing' when rollups of the last 24 hours show
-- traffic for an operation that has no baseline yet. Stale = older than 26 h (daily job + slack).
CREATE VIEW v_baseline_health AS
SELECT b.operation_type,
       b.calculated_at,
       extract(epoch FROM now() - b.calculated_at)::double precision AS age_s,
       b.samples,
       b.window_days,
       b.run_id,
       r.status AS run_status,
       CASE WHEN now() - b.calculated_at > interval '26 hours' THEN 'stale' ELSE 'fresh' END
           AS state
FROM baselines b
LEFT JOIN baseline_runs r ON r.run_id = b.run_id
UNION ALL
SELECT m.operation_type, NULL, NULL, NULL, NULL, NULL, NULL, 'missing'
FROM (SELECT DISTINCT operation_type FROM metric_rollups_hourly
       WHERE hour >= now() - interval '24 hours') m
WHERE NOT EXISTS (SELECT 1 FROM baselines b WHERE b.operation_type = m.operation_type);

-- Baseline runs and delivery workers in one list: what ran, when it was last seen, how it ended.
CREATE VIEW v_job_health AS
SELECT 'baseline_run' AS component,
       r.run_id::text AS name,
       r.status,
       r.started_at,
       coalesce(r.finished_at, r.started_at) AS last_seen_at,
       extract(epoch FROM coalesce(r.finished_at, now()) - r.started_at)::double precision
           AS duration_s,
       r.updated::bigint AS succeeded,
       r.failed::bigint AS failed,
       jsonb_array_length(r.errors) AS errors
FROM baseline_runs r
WHERE r.started_at >= now() - interval '7 days'
UNION ALL
SELECT 'worker',
       k.worker_id,
       CASE
           WHEN k.stopped_at IS NOT NULL THEN 'stopped'
           WHEN k.heartbeat_at >= now() - interval '30 seconds' THEN 'live'
           ELSE 'stale'
       END,
       k.started_at,
       coalesce(k.stopped_at, k.heartbeat_at),
       extract(epoch FROM coalesce(k.stopped_at, now()) - k.started_at)::double precision,
       k.delivered,
       k.failed,
       0
FROM workers k
WHERE k.stopped_at IS NULL OR k.stopped_at >= now() - interval '7 days';

-- One row summarising everything above; `health` is ok / degraded / critical.
CREATE VIEW v_system_health AS
WITH q AS (
    SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'in_flight') AS in_flight,
           count(*) FILTER (WHERE status = 'dead') AS dead_letters,
           coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')),
                    0)::double precision AS oldest_pending_age_s
    FROM delivery_queue
), a AS (
    SELECT count(*) FILTER (WHERE status = 'firing') AS firing,
           count(*) FILTER (WHERE status = 'firing' AND severity = 'CRITICAL') AS critical_firing,
           count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged
    FROM alerts WHERE status IN ('firing', 'acknowledged')
), w AS (
    SELECT count(*) AS degraded_webhooks,
           count(*) FILTER (WHERE breaker_state = 'open') AS open_breakers
    FROM v_degraded_webhooks
), k AS (
    SELECT count(*) AS live_workers FROM workers
    WHERE stopped_at IS NULL AND heartbeat_at >= now() - interval '30 seconds'
), b AS (
    SELECT (SELECT status FROM baseline_runs ORDER BY started_at DESC LIMIT 1)
               AS last_baseline_status,
           (SELECT max(finished_at) FROM baseline_runs WHERE status = 'succeeded')
               AS last_baseline_success_at,
           (SELECT max(detected_at) FROM anomalies) AS last_anomaly_at
)
SELECT q.pending, q.in_flight, q.dead_letters, q.oldest_pending_age_s,
       a.firing, a.critical_firing, a.acknowledged,
       w.degraded_webhooks, w.open_breakers,
       k.live_workers,
       b.last_baseline_status, b.last_baseline_success_at, b.last_anomaly_at,
       CASE
           WHEN q.oldest_pending_age_s > 1800 OR b.last_baseline_status = 'failed' THEN 'critical'
           WHEN q.dead_letters > 0 OR w.degraded_webhooks > 0 OR q.oldest_pending_age_s > 300
                OR b.last_baseline_status = 'partial' THEN 'degraded'
           ELSE 'ok'
       END AS health
FROM q, a, w, k, b;
