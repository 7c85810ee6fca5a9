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

-- The raise path's plans follow the table's statistics: a session's generic plan made while
-- alerts was small kept walking it whole as it grew (55 ms an alert at 30,000 alerts, until
-- autovacuum's next round, a minute away on a fresh install). Once the table has changed by as
-- much as it held when it was last analyzed (1,000 changes at least), the next raise analyzes
-- it (one producer at a time, and none while another analyze or vacuum holds the table); every
-- session's plans are made again from then on. Only a role that may analyze the table tries.
CREATE OR REPLACE FUNCTION alert_delivery.analyze_if_grown(p_table regclass)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_target text := current_setting('default_statistics_target');
BEGIN
    -- Two counters from shared memory, no query: what every raise pays. Live rows less the
    -- changes is about what the table held when it was last analyzed.
    IF pg_stat_get_mod_since_analyze(p_table)
           <= greatest(1000, pg_stat_get_live_tuples(p_table)
                             - pg_stat_get_mod_since_analyze(p_table))
       OR NOT (SELECT pg_has_role(c.relowner, 'MEMBER') FROM pg_catalog.pg_class c
               WHERE c.oid = p_table)
       OR NOT pg_try_advisory_xact_lock(1097, p_table::oid::integer) THEN
        RETURN false;
    END IF;
    BEGIN
        -- Not behind autovacuum (or anyone) analyzing or vacuuming it: give up at once.
        EXECUTE format('LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE NOWAIT', p_table);
        -- From a sample of 3,000 rows: the row count and the shape of the columns, what plans
        -- depend on, in ~50 ms where the default sample took 650 ms at 30,000 alerts (its jsonb
        -- columns). Autovacuum's own analyze refines them later. (A column list would be cheaper
        -- still, but does not reset the change counter, so every raise would analyze again.)
        PERFORM set_config('default_statistics_target', '10', true);
        EXECUTE format('ANALYZE %s', p_table);
        PERFORM set_config('default_statistics_target', v_target, true);
        RETURN true;
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;
    END;
END $$;
