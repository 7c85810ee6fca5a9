-- TEMPORARY (branch `render`, issue 10 item 7): a stand-in for the lead's 0008_labels.sql so
-- the delivery engine's render-at-claim can be built and tested before the alerting rewrite
-- lands. The lead REPLACES this whole file when merging; the real 0008 carries the body column
-- and the real alert_messages (labels, annotations, event_detail), in sql/functions/.

-- The exact rendered body (JSON text), written once by the engine at the row's first claim.
ALTER TABLE alert_delivery.delivery_queue ADD COLUMN body text;

-- The alert messages of a queue row, in the given id order (NULL if none of the alerts exist).
-- Stand-in: labels and annotations are empty and event_detail is null until the real one lands.
CREATE FUNCTION alert_delivery.alert_messages(p_ids bigint[]) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_agg(alert_delivery.alert_message(a)
                     || '{"labels": {}, "annotations": {}, "event_detail": null}'::jsonb
                     ORDER BY o.i)
    FROM unnest(p_ids) WITH ORDINALITY AS o(id, i)
    JOIN alert_delivery.alerts a ON a.alert_id = o.id
$$;
