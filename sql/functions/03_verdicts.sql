-- What holds an alert back before routing: a silence or an inhibiting alert. Both are
-- single-SELECT SQL functions so callers' LATERAL joins inline them.

-- The active silence whose matchers all match (the one ending last), if any.
CREATE OR REPLACE FUNCTION alert_delivery.silencing(p_labels jsonb)
RETURNS TABLE (silence_id bigint) LANGUAGE sql STABLE AS $$
    SELECT s.silence_id FROM alert_delivery.silences s
    WHERE s.expired_at IS NULL AND s.starts_at <= now() AND s.ends_at > now()
      AND alert_delivery.labels_match(p_labels, s.matchers)
    ORDER BY s.ends_at DESC, s.silence_id LIMIT 1
$$;

-- Alertmanager's inhibition: an open alert matching a rule's source matchers inhibits an alert
-- matching its target matchers when every `equal` label has the same value in both (missing
-- counts as empty). An alert never inhibits itself; silenced sources still inhibit, as in
-- Alertmanager. p_later are ids that do not count as sources (alerts raised later in the same
-- batch, which one alert at a time would not have seen yet).
CREATE OR REPLACE FUNCTION alert_delivery.inhibiting(p_alert_id bigint, p_labels jsonb,
                                                     p_later bigint[])
RETURNS TABLE (alert_id bigint) LANGUAGE sql STABLE AS $$
    SELECT min(o.alert_id)
    FROM alert_delivery.inhibit_rules r
    CROSS JOIN LATERAL (
        -- min(), not ORDER BY ... LIMIT 1: the latter walks the primary key through every open
        -- alert instead of asking the labels index for the few candidates.
        SELECT min(o.alert_id) AS alert_id FROM alert_delivery.alerts o
        WHERE o.status IN ('firing', 'acknowledged') AND o.alert_id <> p_alert_id
          AND NOT o.alert_id = ANY (p_later)
          -- Equal labels and equality matchers narrow the search through alerts_labels.
          AND o.labels @> (alert_delivery.matchers_equalities(r.source_matchers)
                           || coalesce((SELECT jsonb_object_agg(e, p_labels ->> e)
                                        FROM unnest(r.equal) e
                                        WHERE coalesce(p_labels ->> e, '') <> ''), '{}'))
          AND alert_delivery.labels_match(o.labels, r.source_matchers)
          AND NOT EXISTS (SELECT 1 FROM unnest(r.equal) e
                          WHERE coalesce(o.labels ->> e, '') <> coalesce(p_labels ->> e, ''))) o
    WHERE r.active AND alert_delivery.labels_match(p_labels, r.target_matchers)
    HAVING min(o.alert_id) IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION alert_delivery.log_suppressed(p_alert_id bigint, p_reason text,
                                                         p_detail text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
    VALUES (p_alert_id, 'suppressed_' || p_reason, p_detail)
$$;
