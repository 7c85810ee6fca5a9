-- The HTTP API (alert_delivery/api) and `alert-delivery tokens`: named queries.

-- name: insert_token
INSERT INTO alert_delivery.api_tokens (name, scope, token_sha256, rate_per_s)
VALUES (%(name)s, %(scope)s, %(token_sha256)s, %(rate_per_s)s)
RETURNING token_id;

-- name: live_token_named
SELECT token_id FROM alert_delivery.api_tokens WHERE name = %(name)s AND revoked_at IS NULL;

-- name: list_tokens
SELECT token_id, name, scope, rate_per_s, created_at, revoked_at
FROM alert_delivery.api_tokens
WHERE %(all)s OR revoked_at IS NULL
ORDER BY name, token_id;

-- name: revoke_token
UPDATE alert_delivery.api_tokens SET revoked_at = now()
WHERE name = %(name)s AND revoked_at IS NULL
RETURNING token_id;

-- name: live_tokens
SELECT token_id, name, scope, token_sha256, rate_per_s
FROM alert_delivery.api_tokens WHERE revoked_at IS NULL;

-- name: tokens_table_exists
SELECT to_regclass('alert_delivery.api_tokens') IS NOT NULL;

-- name: open_alerts_by_fingerprint
SELECT alert_id, fingerprint FROM alert_delivery.alerts
WHERE fingerprint = ANY (%(fingerprints)s::text[]) AND status IN ('firing', 'acknowledged')
ORDER BY alert_id;

-- name: open_alerts_by_dedup_key
SELECT alert_id FROM alert_delivery.alerts
WHERE labels @> jsonb_build_object('source', 'pagerduty', 'dedup_key', %(dedup_key)s::text)
  AND status IN ('firing', 'acknowledged')
ORDER BY alert_id;

-- name: lock_alert
SELECT status FROM alert_delivery.alerts WHERE alert_id = %(alert_id)s FOR UPDATE;

-- name: open_alerts
-- Alertmanager's view of open alerts: suppressed by a silence active now, or by the alert that
-- inhibited it.
SELECT a.alert_id, a.fingerprint, a.labels, a.annotations, a.status, a.held_reason,
       s.silence_id,
       CASE WHEN a.held_reason = 'inhibited'
            THEN (SELECT i.fingerprint FROM alert_delivery.alerts i
                  WHERE i.alert_id = a.held_by) END AS inhibited_by,
       coalesce(a.starts_at, a.created_at) AS starts_at, a.ends_at, a.updated_at,
       coalesce(a.generator_url, '') AS generator_url,
       coalesce((SELECT array_agg(DISTINCT w.name ORDER BY w.name)
                 FROM alert_delivery.delivery_queue q
                 JOIN alert_delivery.webhooks w ON w.webhook_id = q.webhook_id
                 WHERE q.alert_id = a.alert_id), '{}') AS receivers
FROM alert_delivery.alerts a
LEFT JOIN LATERAL alert_delivery.silencing(a.labels) s ON true
WHERE a.status IN ('firing', 'acknowledged')
ORDER BY a.alert_id DESC
LIMIT %(limit)s;

-- name: alert_detail
SELECT alert_id, fingerprint, labels, annotations, status, severity, title, description,
       held_reason, held_by, occurrences, created_at, updated_at, last_seen_at, starts_at,
       ends_at, generator_url, acknowledged_at, acknowledged_by, resolved_at
FROM alert_delivery.alerts WHERE alert_id = %(alert_id)s;

-- name: alert_deliveries
SELECT q.delivery_id, w.name AS webhook, w.kind, q.event, q.status, q.attempts, q.last_status,
       q.created_at, q.delivered_at, q.dead_at, q.next_attempt_at
FROM alert_delivery.delivery_queue q
JOIN alert_delivery.webhooks w ON w.webhook_id = q.webhook_id
WHERE q.alert_id = %(alert_id)s OR %(alert_id)s = ANY (q.alert_ids)
ORDER BY q.delivery_id;

-- name: alert_log
SELECT log_id, delivery_id, event, attempt, http_status, latency_ms, detail, created_at
FROM alert_delivery.delivery_log
WHERE alert_id = %(alert_id)s
   OR delivery_id IN (SELECT q.delivery_id FROM alert_delivery.delivery_queue q
                      WHERE q.alert_id = %(alert_id)s OR %(alert_id)s = ANY (q.alert_ids))
ORDER BY log_id
LIMIT 1000;

-- name: silence_by_id
SELECT silence_id, expired_at FROM alert_delivery.silences WHERE silence_id = %(silence_id)s;

-- name: ping
SELECT 1;

-- name: ended_open_alerts
SELECT alert_id FROM alert_delivery.alerts
WHERE status IN ('firing', 'acknowledged') AND ends_at IS NOT NULL AND ends_at <= now()
ORDER BY ends_at, alert_id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: webhook_names
SELECT name FROM alert_delivery.webhooks ORDER BY name;
