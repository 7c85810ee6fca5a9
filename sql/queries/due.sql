-- Due-checks for Dagster schedules and sensors: one cheap EXISTS each, so a tick with nothing to
-- do launches no run. Each mirrors the condition of the work it guards (named beside it).

-- name: detection_due
-- detect_hourly for [start, end): metrics were recorded in that hour (index on recorded_at).
SELECT EXISTS (SELECT 1 FROM alert_delivery.performance_metrics
               WHERE recorded_at >= %(start)s AND recorded_at < %(end)s)

-- name: baselines_due
-- recalculate_baselines for the window ending at %(end)s: any metrics in it.
SELECT EXISTS (SELECT 1 FROM alert_delivery.performance_metrics
               WHERE recorded_at >= %(start)s AND recorded_at < %(end)s)

-- name: first_deliveries_due
-- The delivery sensor: first attempts (attempts = 0) due at least %(min_age_s)s, split at the
-- cursor. Retries and expired leases are the retry sweep's (retries_due).
SELECT count(*) FILTER (WHERE delivery_id > %(cursor)s) AS new_rows,
       min(delivery_id) FILTER (WHERE delivery_id > %(cursor)s) AS new_first,
       max(delivery_id) FILTER (WHERE delivery_id > %(cursor)s) AS new_last,
       count(*) FILTER (WHERE delivery_id <= %(cursor)s) AS old_rows,
       min(delivery_id) FILTER (WHERE delivery_id <= %(cursor)s) AS old_first,
       max(delivery_id) FILTER (WHERE delivery_id <= %(cursor)s) AS old_last
FROM alert_delivery.delivery_queue
WHERE status = 'pending' AND attempts = 0
  AND next_attempt_at <= now() - make_interval(secs => %(min_age_s)s)

-- name: retries_due
-- retry_sweep: pending rows that failed before and whose next attempt is due, or in_flight rows
-- whose lease expired (for in_flight rows next_attempt_at holds the lease end), due at least
-- %(min_age_s)s. Served by the partial index delivery_queue_due.
SELECT count(*), min(delivery_id), max(delivery_id)
FROM alert_delivery.delivery_queue
WHERE ((status = 'pending' AND attempts > 0) OR status = 'in_flight')
  AND next_attempt_at <= now() - make_interval(secs => %(min_age_s)s)

-- name: live_workers
-- Workers whose heartbeat is fresh (the same test as delivery.sql's live_workers).
SELECT count(*) FROM alert_delivery.workers
WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => %(stale_s)s)

-- name: escalation_due
-- escalate (release_held, then alert_delivery.run_escalations in sql/functions/07_escalation.sql):
-- true when any of its steps would change something.
SELECT
    -- release_held: a held alert stopped firing or is no longer silenced or inhibited.
    EXISTS (SELECT 1 FROM alert_delivery.alerts a
            WHERE a.held_reason IS NOT NULL
              AND (a.status <> 'firing'
                   OR (NOT EXISTS (SELECT 1 FROM alert_delivery.silencing(a.labels))
                       AND NOT EXISTS (SELECT 1 FROM alert_delivery.inhibiting(
                                           a.alert_id, a.labels, '{}')))))
    -- Stop: an open escalation whose alert no longer fires or whose delivery stopped waiting.
    OR EXISTS (SELECT 1 FROM alert_delivery.escalations e
               JOIN alert_delivery.alerts a ON a.alert_id = e.alert_id
               WHERE e.stopped_at IS NULL AND a.status <> 'firing')
    OR EXISTS (SELECT 1 FROM alert_delivery.escalations e
               JOIN alert_delivery.delivery_queue q ON q.delivery_id = e.delivery_id
               WHERE e.stopped_at IS NULL AND q.status NOT IN ('pending', 'in_flight'))
    -- Open 'unacknowledged': firing, not held, notified longer ago than its escalate-after.
    OR EXISTS (SELECT 1 FROM alert_delivery.alerts a
               CROSS JOIN LATERAL (SELECT min(q.created_at) AS first_at
                                   FROM alert_delivery.delivery_queue q
                                   WHERE q.alert_ids @> ARRAY[a.alert_id]
                                     AND q.event = 'trigger') f
               WHERE a.status = 'firing' AND a.held_reason IS NULL AND f.first_at IS NOT NULL
                 AND greatest(a.created_at, f.first_at)
                     <= now() - make_interval(secs => alert_delivery.escalate_after_s(a))
                 AND NOT EXISTS (SELECT 1 FROM alert_delivery.escalations o
                                 WHERE o.alert_id = a.alert_id AND o.reason = 'unacknowledged'))
    -- Open 'stale_delivery' / 'near_dead_letter' for waiting deliveries of firing alerts.
    OR EXISTS (SELECT 1 FROM alert_delivery.delivery_queue q
               JOIN alert_delivery.webhooks w ON w.webhook_id = q.webhook_id
               JOIN alert_delivery.alerts a ON a.alert_id = q.alert_id AND a.status = 'firing'
               CROSS JOIN LATERAL (VALUES
                   ('stale_delivery',
                    q.created_at <= now() - make_interval(secs => %(stale_after_s)s)),
                   ('near_dead_letter',
                    q.attempts >= coalesce(nullif(cardinality(w.retry_schedule_s), 0),
                                           %(dead_after_attempts)s))) c(reason, hit)
               WHERE q.status IN ('pending', 'in_flight') AND q.event NOT IN ('escalate', 'test')
                 AND c.hit
                 AND NOT EXISTS (SELECT 1 FROM alert_delivery.escalations o
                                 WHERE o.delivery_id = q.delivery_id AND o.reason = c.reason))
    -- Send: an open escalation's next level is due and its alert fires, not held.
    OR EXISTS (SELECT 1 FROM alert_delivery.escalations e
               JOIN alert_delivery.alerts a ON a.alert_id = e.alert_id
               WHERE e.stopped_at IS NULL AND e.next_at <= now() AND a.status = 'firing'
                 AND a.held_reason IS NULL)

-- name: reports_due
-- The hourly report assets for [start, end): something was delivered, logged or raised then.
SELECT EXISTS (SELECT 1 FROM alert_delivery.delivery_log
               WHERE created_at >= %(start)s AND created_at < %(end)s)
    OR EXISTS (SELECT 1 FROM alert_delivery.alerts
               WHERE created_at >= %(start)s AND created_at < %(end)s)

-- name: escalation_report_due
-- escalation_report: an escalation opened, sent or stopped since %(since)s.
SELECT EXISTS (SELECT 1 FROM alert_delivery.escalations
               WHERE created_at >= %(since)s OR last_sent_at >= %(since)s
                  OR stopped_at >= %(since)s)

-- name: log_partitions_due
-- The log_partitions schedule (sql/functions/10_partitions.sql): a delivery_log partition is
-- older than the retention, or one of today and the next %(ahead)s days has none. Reads the
-- catalog only (pg_inherits), never the log.
SELECT alert_delivery.log_partitions_due(make_interval(days => %(retention_days)s), %(ahead)s)
