-- Escalation queries. The work itself is PL/pgSQL (sql/migrations/0006_escalation.sql) so an
-- application can also run it from SQL; these blocks call it and read its state.

-- name: run_escalations
SELECT escalation_id, alert_id, delivery_id, reason, action, level, queued
FROM alert_delivery.run_escalations(%(interval_s)s, %(max_level)s, %(stale_after_s)s,
                                    %(dead_after_attempts)s);

-- name: list_escalations
-- Open escalations first (most urgent next), then the most recently stopped.
SELECT escalation_id, state, alert_id, severity, operation_type, alert_type, title, alert_status,
       reason, delivery_id, level, created_at, last_sent_at, next_at, stopped_at, stop_reason
FROM alert_delivery.escalation_queue
ORDER BY state, CASE WHEN state = 'open' THEN next_at END, stopped_at DESC, escalation_id DESC
LIMIT %(limit)s;

-- name: count_escalations
SELECT count(*) FILTER (WHERE stopped_at IS NULL) AS open,
       count(*) FILTER (WHERE stopped_at IS NOT NULL) AS stopped,
       coalesce(sum(level), 0) AS sent
FROM alert_delivery.escalations;

-- name: webhook_ids_by_name
SELECT name, webhook_id FROM alert_delivery.webhooks WHERE name = ANY (%(names)s::text[]);

-- name: insert_route
INSERT INTO alert_delivery.escalation_routes (name, matchers, reasons, target_kinds)
VALUES (%(name)s, %(matchers)s::jsonb, %(reasons)s, %(target_kinds)s)
RETURNING route_id;

-- name: insert_route_target
INSERT INTO alert_delivery.escalation_route_targets (route_id, webhook_id)
VALUES (%(route_id)s, %(webhook_id)s);

-- name: list_routes
SELECT r.route_id, r.name, r.matchers, r.reasons, r.target_kinds, r.active,
       coalesce((SELECT array_agg(w.name ORDER BY w.name)
                 FROM alert_delivery.escalation_route_targets t
                 JOIN alert_delivery.webhooks w ON w.webhook_id = t.webhook_id
                 WHERE t.route_id = r.route_id), '{}') AS webhooks
FROM alert_delivery.escalation_routes r
ORDER BY r.route_id;

-- name: delete_route
DELETE FROM alert_delivery.escalation_routes WHERE name = %(name)s RETURNING route_id;
