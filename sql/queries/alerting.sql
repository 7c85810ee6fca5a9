-- Alerting: named queries used by alert_delivery.alerting (the pipeline itself lives in
-- sql/functions/ as PL/pgSQL functions).

-- name: raise_alert
SELECT alert_id, outcome FROM alert_delivery.raise_alert(%(alert)s::jsonb);

-- name: raise_alerts
SELECT alert_id, outcome FROM alert_delivery.raise_alerts(%(alerts)s::jsonb);

-- name: acknowledge_alert
SELECT alert_delivery.acknowledge_alert(%(alert_id)s, %(by)s);

-- name: resolve_alert
SELECT alert_delivery.resolve_alert(%(alert_id)s, %(by)s);

-- name: release_held
SELECT alert_delivery.release_held();

-- name: alert_messages
-- What the channels render (alert_delivery.channels, in Python): a JSON array in the given order.
SELECT alert_delivery.alert_messages(%(alert_ids)s::bigint[]);

-- name: list_alerts
SELECT alert_id, severity, status, operation_type, alert_type, title, occurrences, held_reason,
       created_at, acknowledged_by, resolved_at, source, last_seen_at, labels
FROM alert_delivery.alerts
WHERE (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY alert_id DESC
LIMIT %(limit)s;

-- name: partition_anomalies
SELECT anomaly_id, partition_start, operation_type, anomaly_type, severity, z_score, p99_ratio,
       samples, observed_mean_ms, observed_p99_ms, baseline_mean_ms, baseline_p99_ms, metric_id,
       duration_ms, baseline_ms, detected_at
FROM alert_delivery.anomalies
WHERE partition_start >= %(start)s AND partition_start < %(end)s
ORDER BY partition_start, operation_type;

-- name: partition_bottlenecks
SELECT correlation_id, partition_start, operation_a, operation_b, pearson_r, samples, confidence,
       both_degraded, bottleneck_type, recommendation, detected_at
FROM alert_delivery.correlations
WHERE partition_start >= %(start)s AND partition_start < %(end)s
  AND bottleneck_type IS NOT NULL
ORDER BY partition_start, operation_a, operation_b;

-- name: stale_detection_alerts
SELECT alert_id FROM alert_delivery.alerts
WHERE source = 'detection' AND status IN ('firing', 'acknowledged')
  AND partition_start < %(start)s AND NOT (fingerprint = ANY (%(seen)s::text[]))
ORDER BY alert_id;

-- name: insert_silence
INSERT INTO alert_delivery.silences (operation_type, alert_type, matchers, starts_at, ends_at,
                                     reason, created_by)
VALUES (%(operation_type)s, %(alert_type)s, %(matchers)s::jsonb, %(starts_at)s, %(ends_at)s,
        %(reason)s, %(created_by)s)
RETURNING silence_id;

-- name: list_silences
SELECT silence_id, matchers, starts_at, ends_at, reason, created_by, expired_at,
       (expired_at IS NULL AND starts_at <= now() AND ends_at > now()) AS active,
       (SELECT count(*) FROM alert_delivery.alerts a
        WHERE a.held_reason = 'silenced' AND a.held_by = s.silence_id) AS holding
FROM alert_delivery.silences s
WHERE %(all)s OR (expired_at IS NULL AND ends_at > now())
ORDER BY silence_id;

-- name: expire_silence
UPDATE alert_delivery.silences SET expired_at = now()
WHERE silence_id = %(silence_id)s AND expired_at IS NULL
RETURNING silence_id;

-- name: silence_exists
SELECT expired_at FROM alert_delivery.silences WHERE silence_id = %(silence_id)s;

-- name: insert_rule
INSERT INTO alert_delivery.routing_rules (name, priority, matchers, continues, escalate_after_s,
                                          group_wait_s, group_window_s, group_interval_s,
                                          repeat_interval_s, max_batch, target_kinds, group_by,
                                          is_fallback, notify_email, notify_inapp)
VALUES (%(name)s, %(priority)s, %(matchers)s::jsonb, %(continues)s, %(escalate_after_s)s,
        %(group_wait_s)s, %(group_wait_s)s, %(group_interval_s)s, %(repeat_interval_s)s,
        %(max_batch)s, %(target_kinds)s, %(group_by)s, %(is_fallback)s, %(notify_email)s,
        %(notify_inapp)s)
RETURNING rule_id;

-- name: insert_rule_target
INSERT INTO alert_delivery.routing_rule_targets (rule_id, webhook_id)
VALUES (%(rule_id)s, %(webhook_id)s);

-- name: webhook_ids_by_name
SELECT name, webhook_id FROM alert_delivery.webhooks WHERE name = ANY (%(names)s::text[]);

-- name: list_rules
SELECT r.rule_id, r.name, r.priority, r.matchers, r.continues, r.target_kinds,
       coalesce((SELECT array_agg(w.name ORDER BY w.name) FROM alert_delivery.routing_rule_targets t
                 JOIN alert_delivery.webhooks w ON w.webhook_id = t.webhook_id
                 WHERE t.rule_id = r.rule_id), '{}') AS webhooks,
       r.group_by, r.group_wait_s, r.group_interval_s, r.repeat_interval_s, r.max_batch,
       r.escalate_after_s, r.is_fallback, r.active
FROM alert_delivery.routing_rules r
ORDER BY r.is_fallback, r.priority, r.rule_id;

-- name: delete_rule
DELETE FROM alert_delivery.routing_rules WHERE name = %(name)s RETURNING rule_id;

-- name: inbox_list
SELECT message_id, recipient, alert_id, severity, title, created_at, read_at
FROM alert_delivery.inbox_messages
WHERE (%(recipient)s::text IS NULL OR recipient = %(recipient)s)
  AND (%(all)s OR read_at IS NULL)
ORDER BY message_id DESC
LIMIT %(limit)s;

-- name: inbox_read
UPDATE alert_delivery.inbox_messages SET read_at = coalesce(read_at, now())
WHERE message_id = %(message_id)s
RETURNING message_id, recipient, alert_id, severity, title, body, created_at, read_at;

-- name: rule_id_by_name
SELECT rule_id FROM alert_delivery.routing_rules WHERE name = %(name)s;

-- name: webhook_names_by_id
SELECT name FROM alert_delivery.webhooks WHERE webhook_id = ANY (%(ids)s::bigint[]) ORDER BY name;

-- name: ensure_rule_target
INSERT INTO alert_delivery.routing_rule_targets (rule_id, webhook_id)
VALUES (%(rule_id)s, %(webhook_id)s)
ON CONFLICT DO NOTHING;

-- name: insert_inhibit_rule
INSERT INTO alert_delivery.inhibit_rules (source_matchers, target_matchers, equal,
                                          equal_operation)
VALUES (%(source)s::jsonb, %(target)s::jsonb, %(equal)s, 'operation_type' = ANY (%(equal)s))
RETURNING inhibit_id;

-- name: list_inhibit_rules
SELECT inhibit_id, source_matchers, target_matchers, equal, active
FROM alert_delivery.inhibit_rules ORDER BY inhibit_id;

-- name: delete_inhibit_rule
DELETE FROM alert_delivery.inhibit_rules WHERE inhibit_id = %(inhibit_id)s RETURNING inhibit_id;
