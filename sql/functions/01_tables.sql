-- Functions tables and views depend on: trigger functions and the operation family lookup.

-- Every webhook has a health row, so the breaker/bucket statement can lock it without an upsert
-- (a data-modifying CTE cannot see rows another CTE of the same statement inserted).
CREATE OR REPLACE FUNCTION alert_delivery.webhook_health_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_delivery.webhook_health (webhook_id) VALUES (NEW.webhook_id)
    ON CONFLICT (webhook_id) DO NOTHING;
    RETURN NEW;
END
$$;

-- Seed 002's legacy channel flags on rules become target kinds, however the row arrives.
CREATE OR REPLACE FUNCTION alert_delivery.routing_rules_normalise() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.notify_email AND NOT 'email' = ANY (NEW.target_kinds) THEN
        NEW.target_kinds := NEW.target_kinds || 'email'::text;
    END IF;
    IF NEW.notify_inapp AND NOT 'inbox' = ANY (NEW.target_kinds) THEN
        NEW.target_kinds := NEW.target_kinds || 'inbox'::text;
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION alert_delivery.operation_family(op text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT f.family FROM alert_delivery.operation_families f
         WHERE op LIKE f.pattern ORDER BY length(f.pattern) DESC, f.pattern LIMIT 1),
        'other')
$$;
