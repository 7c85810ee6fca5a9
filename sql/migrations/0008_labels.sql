-- Labels and matchers (the Prometheus / Alertmanager model), and the functions move out of the
-- migrations: every function now lives in sql/functions/ and is re-applied by `db upgrade`
-- after the migrations, so an upgraded database runs exactly the reviewed code. This file drops
-- the old bodies (and the SQL formatters: bodies are rendered in Python when first claimed) and
-- moves every existing alert, rule, silence, inhibition rule and escalation route to the new
-- columns; no row is deleted.
SET LOCAL search_path TO alert_delivery, public;

-- Old code out ---------------------------------------------------------------------------------
DROP TRIGGER IF EXISTS alerts_before_insert ON alert_delivery.alerts;
DROP TRIGGER IF EXISTS alerts_after_insert ON alert_delivery.alerts;
DO $$
DECLARE
    f regprocedure;
BEGIN
    -- Trigger functions and what views call stay (sql/functions redefines them in place).
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'alert_delivery'::regnamespace
               AND p.proname NOT IN ('webhook_health_row', 'routing_rules_normalise',
                                     'operation_family')
    LOOP
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
END $$;
DROP TYPE IF EXISTS alert_delivery.alert_input, alert_delivery.alert_verdict,
    alert_delivery.alert_pair;
-- Runbook links are resolved when a body is rendered (alert_delivery.alerting.runbooks), under a
-- base URL the team sets; the table pointed at a domain that does not exist.
DROP TABLE alert_delivery.runbooks;

-- Alerts: labels are the identity, annotations the text -----------------------------------------
ALTER TABLE alert_delivery.alerts
    ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN annotations jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Legacy per-alert channel flags (notify_email, notify_inapp, channels) as extra kinds.
    ADD COLUMN extra_kinds text[] NOT NULL DEFAULT '{}',
    ADD COLUMN starts_at timestamptz,
    ADD COLUMN ends_at timestamptz,
    ADD COLUMN generator_url text;

UPDATE alert_delivery.alerts a
SET labels = jsonb_build_object('source', a.source, 'operation_type', a.operation_type,
                                'alert_type', a.alert_type, 'severity', a.severity),
    annotations = jsonb_strip_nulls(jsonb_build_object(
        'title', a.title, 'description', nullif(a.description, ''),
        'runbook_url', a.payload ->> 'runbook_url')),
    starts_at = a.created_at;
-- sha256 of the sorted label set (alert_delivery.labels_fingerprint), computed inline: the
-- function does not exist yet while migrations run.
UPDATE alert_delivery.alerts a
SET fingerprint = (SELECT encode(sha256(convert_to(
                       string_agg(l.key || chr(31) || l.value, chr(30) ORDER BY l.key COLLATE "C"),
                       'UTF8')), 'hex')
                   FROM jsonb_each_text(a.labels) l),
    -- Content (dedup layer 2): the same labels but `source`, the same title and description:
    -- the same alert reported by two producers (alert_delivery.alert_content_hash).
    content_hash = encode(sha256(convert_to(concat_ws(chr(31),
        (SELECT encode(sha256(convert_to(coalesce(string_agg(l.key || chr(31) || l.value, chr(30)
                                                             ORDER BY l.key COLLATE "C"), ''),
                                         'UTF8')), 'hex')
         FROM jsonb_each_text(a.labels - 'source') l),
        a.title, a.description), 'UTF8')), 'hex');
-- Without fastupdate: inhibition looks up alerts raised moments earlier in the same batch, and
-- GIN's pending list (scanned linearly until vacuum merges it) made each lookup grow with it.
-- Room on each page for the update that records a new alert's notification right after its
-- insert: with it that update is HOT (no index entries), without it every index took one.
ALTER TABLE alert_delivery.alerts SET (fillfactor = 75);
CREATE INDEX alerts_labels ON alert_delivery.alerts USING gin (labels jsonb_path_ops)
    WITH (fastupdate = off) WHERE status IN ('firing', 'acknowledged');
-- Inhibition finds its sources through alerts_labels now; nothing reads this one.
DROP INDEX alert_delivery.alerts_open_operation;
-- Content dedup looks among open alerts only.
DROP INDEX alert_delivery.alerts_content_hash;
CREATE INDEX alerts_open_content ON alert_delivery.alerts (content_hash)
    WHERE status IN ('firing', 'acknowledged');

-- Routing rules: matchers, continue, Alertmanager's timers ----------------------------------------
ALTER TABLE alert_delivery.routing_rules
    ADD COLUMN matchers jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(matchers) = 'array'),
    ADD COLUMN continues boolean NOT NULL DEFAULT false,
    ADD COLUMN group_wait_s integer CHECK (group_wait_s BETWEEN 0 AND 86400),
    ADD COLUMN group_interval_s integer NOT NULL DEFAULT 30
        CHECK (group_interval_s BETWEEN 1 AND 86400),
    DROP CONSTRAINT routing_rules_group_by_check,
    ADD CONSTRAINT routing_rules_group_by_names
        CHECK (cardinality(group_by) <= 64
               AND array_to_string(group_by, ',') ~ '^([a-zA-Z_][a-zA-Z0-9_]*(,|$))*$'),
    ALTER COLUMN escalate_after_s DROP NOT NULL,
    ALTER COLUMN escalate_after_s DROP DEFAULT;
UPDATE alert_delivery.routing_rules r
SET matchers = (SELECT coalesce(jsonb_agg(jsonb_build_array(m.name, '=', m.value)), '[]')
                FROM (VALUES ('severity', r.severity), ('alert_type', r.alert_type),
                             ('operation_type', r.operation_type)) m(name, value)
                WHERE m.value <> 'ALL'),
    group_wait_s = r.group_window_s,
    -- `routes add` stored 0 when no --escalate-after was given, which escalated INFO and WARNING
    -- alerts within a minute. 0 now means "at once" only where it was the design's choice (the
    -- CRITICAL default rule); elsewhere the severity default applies.
    escalate_after_s = CASE WHEN r.escalate_after_s = 0 AND r.name <> 'default-critical' THEN NULL
                            ELSE r.escalate_after_s END;
ALTER TABLE alert_delivery.routing_rules ALTER COLUMN group_wait_s SET NOT NULL,
    ALTER COLUMN group_wait_s SET DEFAULT 30;
-- First match wins now, and every alert has a severity: the seeded per-severity rules move
-- behind the rules teams add (default priority 100), or no added rule would ever match.
UPDATE alert_delivery.routing_rules
SET priority = CASE name WHEN 'default-critical' THEN 900 WHEN 'default-warning' THEN 910
                         ELSE 920 END
WHERE name IN ('default-critical', 'default-warning', 'default-info')
  AND priority IN (10, 20, 30) AND NOT is_fallback;
-- The old columns stay readable for reports but are no longer consulted: matchers decide.
COMMENT ON COLUMN alert_delivery.routing_rules.severity IS 'legacy, superseded by matchers (0008)';
COMMENT ON COLUMN alert_delivery.routing_rules.alert_type IS 'legacy, superseded by matchers (0008)';
COMMENT ON COLUMN alert_delivery.routing_rules.operation_type IS
    'legacy, superseded by matchers (0008)';
COMMENT ON COLUMN alert_delivery.routing_rules.group_window_s IS
    'legacy, superseded by group_wait_s (0008)';

-- Targets: acknowledge and resolve notices for every kind that wants them --------------------------
ALTER TABLE alert_delivery.webhooks ADD COLUMN send_resolved boolean NOT NULL DEFAULT true;

-- Silences ----------------------------------------------------------------------------------------
ALTER TABLE alert_delivery.silences
    ADD COLUMN matchers jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(matchers) = 'array');
UPDATE alert_delivery.silences s
SET matchers = (SELECT coalesce(jsonb_agg(jsonb_build_array(m.name, '=', m.value)), '[]')
                FROM (VALUES ('operation_type', s.operation_type),
                             ('alert_type', s.alert_type)) m(name, value)
                WHERE m.value <> 'ALL');

-- Inhibition: source matchers, target matchers, equal labels ----------------------------------------
ALTER TABLE alert_delivery.inhibit_rules
    ADD COLUMN source_matchers jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(source_matchers) = 'array'),
    ADD COLUMN target_matchers jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(target_matchers) = 'array'),
    ADD COLUMN equal text[] NOT NULL DEFAULT '{}',
    ALTER COLUMN source_severity DROP NOT NULL,
    ALTER COLUMN target_severities DROP NOT NULL;
-- "Same operation" meant both alerts had one (every alert did): with labels, an alert may have no
-- operation_type, and equal labels missing on both sides count as equal (Alertmanager), so the
-- rule says operation_type!="" on both sides or one CRITICAL alert from Prometheus would hold
-- back every WARNING alert that has no operation either.
UPDATE alert_delivery.inhibit_rules r
SET source_matchers = jsonb_build_array(jsonb_build_array('severity', '=', r.source_severity))
        || CASE WHEN r.equal_operation
                THEN jsonb_build_array(jsonb_build_array('operation_type', '!=', ''))
                ELSE '[]' END,
    target_matchers = jsonb_build_array(jsonb_build_array(
        'severity', '=~', array_to_string(r.target_severities, '|')))
        || CASE WHEN r.equal_operation
                THEN jsonb_build_array(jsonb_build_array('operation_type', '!=', ''))
                ELSE '[]' END,
    equal = CASE WHEN r.equal_operation THEN '{operation_type}'::text[] ELSE '{}' END;

-- Escalation routes --------------------------------------------------------------------------------
ALTER TABLE alert_delivery.escalation_routes
    ADD COLUMN matchers jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(matchers) = 'array');
UPDATE alert_delivery.escalation_routes r
SET matchers = (SELECT coalesce(jsonb_agg(jsonb_build_array(m.name, '=', m.value)), '[]')
                FROM (VALUES ('severity', r.severity), ('alert_type', r.alert_type),
                             ('operation_type', r.operation_type)) m(name, value)
                WHERE m.value <> 'ALL');

-- Queue: bodies rendered once, at first claim ----------------------------------------------------
ALTER TABLE alert_delivery.delivery_queue
    -- The exact body sent and signed, rendered by the engine when it first claims the row.
    ADD COLUMN body text,
    -- When a grouped row is due by its group's timers (group_wait, then group_interval).
    ADD COLUMN group_due_at timestamptz;
ALTER TABLE alert_delivery.delivery_queue ALTER COLUMN body SET STORAGE EXTERNAL;
DROP INDEX alert_delivery.delivery_queue_open_group;
-- The newest row of a group, open or not: joining an open batch and the group_interval both
-- read it.
CREATE INDEX delivery_queue_group ON alert_delivery.delivery_queue
    (webhook_id, group_key, delivery_id DESC) WHERE group_key IS NOT NULL;
