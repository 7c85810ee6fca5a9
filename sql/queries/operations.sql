-- Operations: the exporter's scrape, `alert-delivery status`, report assets, pipeline alerts.

-- name: exporter_gauges
-- Every gauge of one scrape as (metric, labels, value) rows: one round trip, one pass over the
-- queue (the CTE is materialised once), zero rows filled in so dashboards never see gaps.
WITH queue AS MATERIALIZED (
    SELECT webhook_id, status, count(*) AS n, min(created_at) AS oldest,
           min(next_attempt_at) FILTER (WHERE next_attempt_at <= now()) AS oldest_due
    FROM alert_delivery.delivery_queue
    GROUP BY webhook_id, status
), statuses (status) AS (
    VALUES ('pending'), ('in_flight'), ('delivered'), ('dead')
)
SELECT 'deliveries' AS metric,
       jsonb_build_object('webhook', w.name, 'kind', w.kind, 'status', s.status) AS labels,
       coalesce(q.n, 0)::float8 AS value
FROM alert_delivery.webhooks w
CROSS JOIN statuses s
LEFT JOIN queue q ON q.webhook_id = w.webhook_id AND q.status = s.status
UNION ALL
SELECT 'queue_depth', jsonb_build_object('status', s.status), coalesce(sum(q.n), 0)::float8
FROM statuses s LEFT JOIN queue q ON q.status = s.status
GROUP BY s.status
UNION ALL
SELECT 'oldest_pending_age_seconds', '{}'::jsonb,
       coalesce(extract(epoch FROM now() - min(oldest)), 0)::float8
FROM queue WHERE status = 'pending'
UNION ALL
-- How long the most overdue pending row has been due: a backlog, not a retry waiting its turn.
SELECT 'oldest_due_age_seconds', '{}'::jsonb,
       coalesce(extract(epoch FROM now() - min(oldest_due)), 0)::float8
FROM queue WHERE status = 'pending'
UNION ALL
SELECT 'dead_letters', '{}'::jsonb, coalesce(sum(n), 0)::float8 FROM queue WHERE status = 'dead'
UNION ALL
SELECT 'webhook_breaker_state', jsonb_build_object('webhook', w.name, 'state', b.state),
       (coalesce(h.breaker_state, 'closed') = b.state)::int::float8
FROM alert_delivery.webhooks w
CROSS JOIN (VALUES ('closed'), ('open'), ('half_open')) AS b (state)
LEFT JOIN alert_delivery.webhook_health h ON h.webhook_id = w.webhook_id
UNION ALL
SELECT 'webhook_consecutive_failures', jsonb_build_object('webhook', w.name),
       coalesce(h.consecutive_failures, 0)::float8
FROM alert_delivery.webhooks w
LEFT JOIN alert_delivery.webhook_health h ON h.webhook_id = w.webhook_id
UNION ALL
SELECT 'webhook_active', jsonb_build_object('webhook', w.name, 'kind', w.kind),
       w.active::int::float8
FROM alert_delivery.webhooks w
UNION ALL
SELECT 'live_workers', '{}'::jsonb, count(*)::float8
FROM alert_delivery.workers
WHERE stopped_at IS NULL AND heartbeat_at >= now() - interval '30 seconds'
UNION ALL
SELECT 'alerts', jsonb_build_object('status', st.status, 'severity', sv.severity),
       count(a.alert_id)::float8
FROM (VALUES ('firing'), ('acknowledged'), ('resolved')) AS st (status)
CROSS JOIN (VALUES ('INFO'), ('WARNING'), ('CRITICAL')) AS sv (severity)
LEFT JOIN alert_delivery.alerts a ON a.status = st.status AND a.severity = sv.severity
GROUP BY st.status, sv.severity
-- A stable order keeps successive expositions diffable.
ORDER BY 1, 2;

-- name: exporter_counters
-- Lifetime counts per (event, kind), from the counter tables of migration 0012: the folded totals
-- plus the increments not folded yet, summed in ONE statement (one snapshot), so a fold
-- committing meanwhile neither hides nor doubles anything. Never reads delivery_log: deleting log
-- rows or dropping its partitions leaves every counter where it was. Zero rows for the outcomes,
-- suppression reasons and breaker states that have not happened yet, per kind in use, so
-- rate() and increase() see the first event of each series.
SELECT event, kind, sum(n)::float8 AS n, sum(attempts)::float8 AS attempts
FROM (
    SELECT event, kind, n, attempts FROM alert_delivery.delivery_counters
    UNION ALL
    SELECT event, kind, n, attempts FROM alert_delivery.delivery_counts
    UNION ALL
    SELECT e.event, k.kind, 0, 0
    FROM (SELECT DISTINCT kind FROM alert_delivery.webhooks) k
    CROSS JOIN (VALUES ('delivered'), ('retry_scheduled'), ('dead_lettered'), ('breaker_open'),
                       ('breaker_half_open'), ('breaker_closed')) AS e (event)
    UNION ALL
    SELECT 'suppressed_' || r.reason, 'none', 0, 0
    FROM (VALUES ('duplicate'), ('duplicate_content'), ('silenced'), ('inhibited'),
                 ('no_route')) AS r (reason)
) c
GROUP BY event, kind
ORDER BY event, kind;

-- name: exporter_latency_histogram
-- Attempts logged in (after, upto], per webhook, as cumulative bucket counts. The exporter adds
-- each window to totals it keeps, so a scrape reads only the rows since the previous one (an
-- index range scan on created_at) instead of the whole log; its first scrape reads it all.
-- upto trails now() by %(settle_s)s seconds because created_at is the writer's transaction start:
-- a row becomes visible at commit, and the horizon must not pass a transaction still open.
-- An attempt is a delivery_log row with a latency: the engine logs each attempt once, under its
-- outcome (delivered, retry_scheduled, dead_lettered); rows without latency are bookkeeping.
-- `bounds_ms` is the single definition of the buckets: the exporter reads it from here.
WITH horizon AS (SELECT now() - make_interval(secs => %(settle_s)s) AS upto)
SELECT h.upto, a.webhook, a.bounds_ms, a.cumulative, a.total, a.sum_ms
FROM horizon h
LEFT JOIN LATERAL (
    SELECT coalesce(w.name, '(deleted webhook)') AS webhook,
           '{5,10,25,50,100,250,500,1000,2500,5000,10000}'::float8[] AS bounds_ms,
           ARRAY[count(*) FILTER (WHERE l.latency_ms <= 5),
                 count(*) FILTER (WHERE l.latency_ms <= 10),
                 count(*) FILTER (WHERE l.latency_ms <= 25),
                 count(*) FILTER (WHERE l.latency_ms <= 50),
                 count(*) FILTER (WHERE l.latency_ms <= 100),
                 count(*) FILTER (WHERE l.latency_ms <= 250),
                 count(*) FILTER (WHERE l.latency_ms <= 500),
                 count(*) FILTER (WHERE l.latency_ms <= 1000),
                 count(*) FILTER (WHERE l.latency_ms <= 2500),
                 count(*) FILTER (WHERE l.latency_ms <= 5000),
                 count(*) FILTER (WHERE l.latency_ms <= 10000)]::float8[] AS cumulative,
           count(*)::float8 AS total,
           sum(l.latency_ms)::float8 AS sum_ms
    FROM alert_delivery.delivery_log l
    LEFT JOIN alert_delivery.webhooks w ON w.webhook_id = l.webhook_id
    WHERE l.created_at > %(after)s AND l.created_at <= h.upto
      AND l.event IN ('attempt', 'delivered', 'failed', 'retry_scheduled', 'dead_lettered')
      AND l.latency_ms IS NOT NULL
    GROUP BY 1
) a ON true
ORDER BY a.webhook;

-- name: status_queue_depth
SELECT status, depth, oldest_age_s, due_now, expired_leases
FROM alert_delivery.v_queue_health
ORDER BY array_position(ARRAY['pending', 'in_flight', 'delivered', 'dead'], status);

-- name: status_oldest_pending
SELECT q.delivery_id, w.name, q.event, q.attempts,
       extract(epoch FROM now() - q.created_at)::float8 AS age_s,
       extract(epoch FROM q.next_attempt_at - now())::float8 AS due_in_s,
       q.last_error
FROM alert_delivery.delivery_queue q
JOIN alert_delivery.webhooks w ON w.webhook_id = q.webhook_id
WHERE q.status = 'pending'
ORDER BY q.created_at, q.delivery_id
LIMIT 1;

-- name: status_degraded_webhooks
SELECT name, kind, active, health_status, breaker_state, consecutive_failures,
       dead_letters, pending, disabled_reason
FROM alert_delivery.v_degraded_webhooks
ORDER BY name;

-- name: status_live_workers
SELECT worker_id, hostname, pid,
       extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_s,
       delivered, failed
FROM alert_delivery.workers
WHERE stopped_at IS NULL AND heartbeat_at >= now() - interval '30 seconds'
ORDER BY worker_id;

-- name: report_delivery_by_webhook
-- One row per webhook with activity in [start, end): outcomes, retries, dead letters, latency.
-- failed = attempts that did not deliver (logged as retry_scheduled or dead_lettered, with a
-- latency); a dead_lettered row without latency is a manual dead-lettering, not an attempt.
SELECT w.kind AS channel,
       coalesce(w.name, '(deleted webhook)') AS webhook,
       count(*) FILTER (WHERE l.event = 'delivered') AS delivered,
       count(*) FILTER (WHERE l.event IN ('failed', 'retry_scheduled', 'dead_lettered')
                          AND l.latency_ms IS NOT NULL) AS failed,
       count(*) FILTER (WHERE l.event = 'retry_scheduled') AS retries,
       count(*) FILTER (WHERE l.event = 'dead_lettered') AS dead_lettered,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY l.latency_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY l.latency_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY l.latency_ms) AS p99_ms
FROM alert_delivery.delivery_log l
LEFT JOIN alert_delivery.webhooks w ON w.webhook_id = l.webhook_id
WHERE l.created_at >= %(start)s AND l.created_at < %(end)s
GROUP BY w.kind, w.name
ORDER BY w.kind NULLS LAST, 2;

-- name: report_delivery_latency
-- Latency percentiles over every attempt of the window (not an average of per-webhook values).
SELECT count(*) AS samples,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_ms,
       max(latency_ms) AS max_ms
FROM alert_delivery.delivery_log
WHERE created_at >= %(start)s AND created_at < %(end)s
  AND event IN ('attempt', 'delivered', 'failed', 'retry_scheduled', 'dead_lettered')
  AND latency_ms IS NOT NULL;

-- name: report_response_sla
-- SLA per severity for the alerts created in [start, end), judged as of now.
SELECT s.severity,
       t.target_s,
       count(r.alert_id) AS alerts,
       count(r.acknowledged_at) AS acknowledged,
       count(*) FILTER (WHERE r.sla_state = 'met') AS met,
       count(*) FILTER (WHERE r.sla_state = 'breached') AS breached,
       count(*) FILTER (WHERE r.sla_state = 'open') AS open,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.time_to_ack_s) AS p50_time_to_ack_s,
       max(r.time_to_ack_s) AS max_time_to_ack_s
FROM (VALUES ('CRITICAL', 1), ('WARNING', 2), ('INFO', 3)) AS s (severity, ord)
LEFT JOIN (VALUES ('CRITICAL', 300), ('WARNING', 900)) AS t (severity, target_s)
       ON t.severity = s.severity
LEFT JOIN alert_delivery.v_response_sla_alerts r
       ON r.severity = s.severity AND r.created_at >= %(start)s AND r.created_at < %(end)s
GROUP BY s.severity, s.ord, t.target_s
ORDER BY s.ord;
