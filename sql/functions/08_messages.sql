-- What the delivery engine renders a body from (alert_delivery/channels, in Python): one
-- normalised message per alert, in the order of the queue row's alert ids.

CREATE OR REPLACE FUNCTION alert_delivery.alert_message(a alert_delivery.alerts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', a.alert_id, 'fingerprint', a.fingerprint, 'labels', a.labels,
        'annotations', a.annotations, 'source', a.source, 'operation_type', a.operation_type,
        'alert_type', a.alert_type, 'severity', a.severity, 'status', a.status,
        'title', a.title, 'description', a.description, 'details', a.payload,
        'runbook_url', alert_delivery.safe_url(a.annotations ->> 'runbook_url'),
        'generator_url', alert_delivery.safe_url(a.generator_url),
        'occurrences', a.occurrences, 'created_at', alert_delivery.utc_iso(a.created_at),
        'starts_at', alert_delivery.utc_iso(coalesce(a.starts_at, a.created_at)),
        'acknowledged_by', a.acknowledged_by, 'event_detail', NULL)
$$;

CREATE OR REPLACE FUNCTION alert_delivery.alert_messages(p_ids bigint[]) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(alert_delivery.alert_message(a) ORDER BY u.n), '[]')
    FROM unnest(p_ids) WITH ORDINALITY AS u(id, n)
    JOIN alert_delivery.alerts a ON a.alert_id = u.id AND a.alert_id = ANY (p_ids)
$$;
