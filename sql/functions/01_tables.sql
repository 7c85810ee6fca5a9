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
-- much as it holds (1,000 changes at least) since it was last analyzed, the next raise analyzes
-- it (one producer at a time, giving up on a lock it cannot have within 50 ms); every session's
-- plans are made again from then on. Only a role that may analyze the table tries.
CREATE OR REPLACE FUNCTION alert_delivery.analyze_if_grown(p_table regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_timeout text := current_setting('lock_timeout');
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
        PERFORM set_config('lock_timeout', '50ms', true);
        EXECUTE format('ANALYZE %s', p_table);
        PERFORM set_config('lock_timeout', v_timeout, true);
        RETURN true;
    EXCEPTION WHEN lock_not_available THEN
        -- The subtransaction's rollback restored lock_timeout.
        RETURN false;
    END;
END $$;
