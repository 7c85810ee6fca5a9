-- Alerting: the producer API and the whole notification pipeline (dedup, silences, inhibition,
-- routing, grouping, channel formatting, enqueueing) as PL/pgSQL, so the Python path
-- (alert_delivery.alerting) and any application raising alerts inside its own transaction go
-- through exactly the same code. Python keeps reference copies of the formatters
-- (alert_delivery/channels) that a parity test holds to this file.
SET LOCAL search_path TO alert_delivery, public;

-- Schema additions ----------------------------------------------------------------------------
ALTER TABLE alert_delivery.alerts
    -- Recorded but not notified yet: released by release_held() when the silence ends or the
    -- inhibiting alert resolves, if this alert still fires.
    ADD COLUMN held_reason text CHECK (held_reason IN ('silenced', 'inhibited')),
    ADD COLUMN held_by bigint,
    ADD COLUMN notify_count integer NOT NULL DEFAULT 0,
    -- From the matched routing rules (smallest wins); the escalation job reads escalate_after_s.
    ADD COLUMN escalate_after_s integer,
    ADD COLUMN repeat_interval_s integer;
CREATE INDEX alerts_held ON alert_delivery.alerts (held_reason) WHERE held_reason IS NOT NULL;
CREATE INDEX alerts_open_operation ON alert_delivery.alerts (operation_type, severity)
    WHERE status IN ('firing', 'acknowledged');

ALTER TABLE alert_delivery.routing_rules
    -- Webhooks are registered after the rules exist, so a rule may target every active webhook of
    -- a kind as well as specific webhooks (routing_rule_targets).
    ADD COLUMN target_kinds text[] NOT NULL DEFAULT '{}'
        CHECK (target_kinds <@ ARRAY['slack', 'mattermost', 'pagerduty', 'email', 'webhook',
                                     'inbox']::text[]),
    ADD COLUMN group_by text[] NOT NULL DEFAULT '{severity,alert_type}'
        CHECK (group_by <@ ARRAY['source', 'operation_type', 'alert_type', 'severity']::text[]),
    ADD COLUMN max_batch integer NOT NULL DEFAULT 10 CHECK (max_batch BETWEEN 1 AND 100),
    -- Legacy settings of the original design; normalised into target_kinds by a trigger.
    ADD COLUMN notify_email boolean NOT NULL DEFAULT false,
    ADD COLUMN notify_inapp boolean NOT NULL DEFAULT false;

CREATE FUNCTION alert_delivery.routing_rules_normalise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.notify_email AND NOT 'email' = ANY (NEW.target_kinds) THEN
        NEW.target_kinds := NEW.target_kinds || 'email'::text;
    END IF;
    IF NEW.notify_inapp AND NOT 'inbox' = ANY (NEW.target_kinds) THEN
        NEW.target_kinds := NEW.target_kinds || 'inbox'::text;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER routing_rules_normalise BEFORE INSERT OR UPDATE ON alert_delivery.routing_rules
    FOR EACH ROW EXECUTE FUNCTION alert_delivery.routing_rules_normalise();

-- Resolve and acknowledge notifications look up the webhooks an alert was sent to.
CREATE INDEX delivery_queue_alert_ids ON alert_delivery.delivery_queue USING gin (alert_ids);
CREATE INDEX delivery_queue_open_group
    ON alert_delivery.delivery_queue (webhook_id, group_key, delivery_id DESC)
    WHERE status = 'pending' AND attempts = 0 AND group_key IS NOT NULL;

-- Batches are rewritten as they grow; compressing the payload on every append cost more than it
-- saved (bench/bench_alerting.py), and bodies are small.
ALTER TABLE alert_delivery.delivery_queue ALTER COLUMN payload SET STORAGE EXTERNAL;

CREATE TABLE alert_delivery.runbooks (
    alert_type text PRIMARY KEY,
    url        text NOT NULL CHECK (url ~ '^https://')
);
INSERT INTO alert_delivery.runbooks (alert_type, url) VALUES
    ('STATISTICAL', 'https://runbooks.alert-delivery.dev/anomalies/statistical'),
    ('P99_DEGRADATION', 'https://runbooks.alert-delivery.dev/anomalies/p99-degradation'),
    ('COMBINED', 'https://runbooks.alert-delivery.dev/anomalies/combined'),
    ('MERGE_PIPELINE_SATURATION', 'https://runbooks.alert-delivery.dev/bottlenecks/merge-pipeline'),
    ('OBJECT_STORAGE_IO', 'https://runbooks.alert-delivery.dev/bottlenecks/object-storage-io'),
    ('QUERY_CACHE_PRESSURE', 'https://runbooks.alert-delivery.dev/bottlenecks/query-cache'),
    ('TRANSACTION_LOG_SATURATION', 'https://runbooks.alert-delivery.dev/bottlenecks/transaction-log'),
    ('SHARED_RESOURCE_CONTENTION', 'https://runbooks.alert-delivery.dev/bottlenecks/shared-resource');

-- Defaults of the original design. The fallback receiver is the in-app inbox.
INSERT INTO alert_delivery.routing_rules (name, priority, severity, target_kinds, escalate_after_s, group_window_s)
VALUES ('default-critical', 10, 'CRITICAL', '{mattermost,slack,email}', 0, 0),
       ('default-warning', 20, 'WARNING', '{mattermost,slack}', 600, 30),
       ('default-info', 30, 'INFO', '{slack}', 1800, 30);
INSERT INTO alert_delivery.routing_rules (name, priority, target_kinds, escalate_after_s, group_window_s,
                           is_fallback)
VALUES ('fallback', 1000, '{inbox}', 1800, 30, true);
INSERT INTO alert_delivery.inhibit_rules (source_severity, target_severities, equal_operation)
VALUES ('CRITICAL', '{WARNING,INFO}', true);

-- Text helpers (the escaping every channel relies on) -----------------------------------------
-- Single-expression SQL functions, STABLE, so the planner inlines them into the formatters (a
-- function call per field would cost more than the formatting itself).
-- Control characters (except tab and newline) and bidi overrides never reach a receiver.
CREATE FUNCTION alert_delivery.strip_controls(p text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT regexp_replace(coalesce(p, ''), '[\x01-\x08\x0B-\x1F\x7F\u202A-\u202E\u2066-\u2069]',
                          '', 'g')
$$;

-- PL/pgSQL, not SQL: their argument is an expensive expression used three times, which the
-- planner refuses to inline, and a non-inlined SQL function is planned again per statement.
CREATE FUNCTION alert_delivery.cut(p text, p_max integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF char_length(p) > p_max THEN
        RETURN left(p, p_max - 1) || '…';
    END IF;
    RETURN p;
END
$$;

CREATE FUNCTION alert_delivery.clean_text(p text, p_max integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT alert_delivery.cut(alert_delivery.strip_controls(p), p_max)
$$;

CREATE FUNCTION alert_delivery.slack_cut(e text, p_max integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF char_length(e) > p_max THEN
        RETURN regexp_replace(left(e, p_max - 1), '&[a-z]{0,3}$', '') || '…';
    END IF;
    RETURN e;
END
$$;

-- Slack: escape the three characters its docs name (so <!channel> and <url|x> become text), then
-- truncate without leaving half an entity behind.
CREATE FUNCTION alert_delivery.slack_text(p text, p_max integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT alert_delivery.slack_cut(replace(replace(replace(alert_delivery.strip_controls(p),
                                    '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), p_max)
$$;

-- Mattermost renders Markdown and expands @channel/@all/@here: backslash-escape the markup and
-- break every @ with a zero-width space. Truncate first: escaping at most doubles the length.
CREATE FUNCTION alert_delivery.mattermost_text(p text, p_max integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT replace(regexp_replace(alert_delivery.clean_text(p, p_max / 2),
                                  '([\\`*_~\[\]()#<>|!{}])', '\\\1', 'g'),
                   '@', '@' || chr(8203))
$$;

-- Plain-text Mattermost fields (attachment titles) are not Markdown but still expand mentions.
CREATE FUNCTION alert_delivery.mattermost_plain(p text, p_max integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT replace(alert_delivery.clean_text(p, p_max / 2), '@', '@' || chr(8203))
$$;

CREATE FUNCTION alert_delivery.html_text(p text, p_max integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT replace(replace(replace(replace(replace(alert_delivery.clean_text(p, p_max),
                   '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
$$;

-- One line, so a hostile title cannot inject mail headers.
CREATE FUNCTION alert_delivery.subject_text(p text, p_max integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT alert_delivery.clean_text(regexp_replace(alert_delivery.strip_controls(p), '[\t\n]+',
                                                    ' ', 'g'), p_max)
$$;

CREATE FUNCTION alert_delivery.safe_url(p text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN char_length(p) <= 2000
                 AND p ~ '^https://[A-Za-z0-9._~:/?#@!$&''()*+,;=%-]+$' THEN p END
$$;

CREATE FUNCTION alert_delivery.utc_iso(p timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

CREATE FUNCTION alert_delivery.utc_iso_us(p timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Fingerprint and content hash (the two dedup layers) --------------------------------------------
CREATE FUNCTION alert_delivery.alert_fingerprint(p_source text, p_operation text, p_type text,
                                                 p_severity text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(concat_ws(chr(31), p_source, p_operation, p_type, p_severity),
                                    'UTF8')), 'hex')
$$;

CREATE FUNCTION alert_delivery.alert_content_hash(p_fingerprint text, p_title text,
                                                  p_description text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(concat_ws(chr(31), p_fingerprint, p_title, p_description),
                                    'UTF8')), 'hex')
$$;

-- The normalised alert message every formatter reads (also what a generic webhook receives).
CREATE FUNCTION alert_delivery.alert_message(a alert_delivery.alerts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', a.alert_id, 'fingerprint', a.fingerprint, 'source', a.source,
        'operation_type', a.operation_type, 'alert_type', a.alert_type, 'severity', a.severity,
        'status', a.status, 'title', a.title, 'description', a.description,
        'details', a.payload, 'runbook_url', alert_delivery.safe_url(a.payload ->> 'runbook_url'),
        'occurrences', a.occurrences, 'created_at', alert_delivery.utc_iso(a.created_at),
        'acknowledged_by', a.acknowledged_by)
$$;

-- One expression (concat_ws skips the NULLs) so it inlines like the text helpers.
CREATE FUNCTION alert_delivery.details_text(p jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT concat_ws(', ',
        CASE WHEN jsonb_typeof(p -> 'anomaly_type') IN ('string', 'number', 'boolean')
             THEN 'anomaly_type=' || (p ->> 'anomaly_type') END,
        CASE WHEN jsonb_typeof(p -> 'bottleneck_type') IN ('string', 'number', 'boolean')
             THEN 'bottleneck_type=' || (p ->> 'bottleneck_type') END,
        CASE WHEN jsonb_typeof(p -> 'z_score') IN ('string', 'number', 'boolean')
             THEN 'z_score=' || (p ->> 'z_score') END,
        CASE WHEN jsonb_typeof(p -> 'p99_ratio') IN ('string', 'number', 'boolean')
             THEN 'p99_ratio=' || (p ->> 'p99_ratio') END,
        CASE WHEN jsonb_typeof(p -> 'metric_id') IN ('string', 'number', 'boolean')
             THEN 'metric_id=' || (p ->> 'metric_id') END,
        CASE WHEN jsonb_typeof(p -> 'duration_ms') IN ('string', 'number', 'boolean')
             THEN 'duration_ms=' || (p ->> 'duration_ms') END,
        CASE WHEN jsonb_typeof(p -> 'baseline_ms') IN ('string', 'number', 'boolean')
             THEN 'baseline_ms=' || (p ->> 'baseline_ms') END,
        CASE WHEN jsonb_typeof(p -> 'pearson_r') IN ('string', 'number', 'boolean')
             THEN 'pearson_r=' || (p ->> 'pearson_r') END,
        CASE WHEN jsonb_typeof(p -> 'detected_at') IN ('string', 'number', 'boolean')
             THEN 'detected_at=' || (p ->> 'detected_at') END)
$$;

CREATE FUNCTION alert_delivery.event_label(p_event text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE p_event WHEN 'trigger' THEN 'FIRING' WHEN 'resolve' THEN 'RESOLVED'
                        WHEN 'acknowledge' THEN 'ACKNOWLEDGED' WHEN 'escalate' THEN 'ESCALATED'
                        ELSE 'TEST' END
$$;

-- "FIRING [CRITICAL] merge: title" for one alert, "FIRING: 3 alerts (STATISTICAL)" for a group.
CREATE FUNCTION alert_delivery.headline(p_event text, p_msgs jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_array_length(p_msgs) = 1
        THEN format('%s [%s] %s: %s', alert_delivery.event_label(p_event),
                    p_msgs -> 0 ->> 'severity', p_msgs -> 0 ->> 'operation_type',
                    p_msgs -> 0 ->> 'title')
        ELSE format('%s: %s alerts (%s)', alert_delivery.event_label(p_event),
                    jsonb_array_length(p_msgs), p_msgs -> 0 ->> 'alert_type') END
$$;

-- Channel formatters ---------------------------------------------------------------------------
CREATE FUNCTION alert_delivery.slack_attachment(p_event text, m jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object(
            'color', CASE WHEN p_event = 'resolve' THEN '#2EB67D'
                          WHEN m ->> 'severity' = 'CRITICAL' THEN '#E01E5A'
                          WHEN m ->> 'severity' = 'WARNING' THEN '#ECB22E' ELSE '#36C5F0' END,
            'fallback', alert_delivery.slack_text(alert_delivery.headline(p_event, jsonb_build_array(m)), 300),
            'blocks', jsonb_build_array(
                jsonb_build_object('type', 'header', 'text', jsonb_build_object(
                    'type', 'plain_text', 'emoji', false,
                    'text', alert_delivery.slack_text(format('%s [%s] %s', alert_delivery.event_label(p_event), m ->> 'severity',
                                              m ->> 'title'), 150))),
                jsonb_build_object('type', 'section', 'text', jsonb_build_object(
                    'type', 'plain_text', 'emoji', false,
                    'text', alert_delivery.slack_text(coalesce(nullif(btrim(m ->> 'description'), ''),
                                                '(no description)'), 2900))),
                jsonb_build_object('type', 'section', 'fields', jsonb_build_array(
                    jsonb_build_object('type', 'plain_text',
                        'text', alert_delivery.slack_text('Operation: ' || (m ->> 'operation_type'), 500)),
                    jsonb_build_object('type', 'plain_text',
                        'text', alert_delivery.slack_text('Type: ' || (m ->> 'alert_type'), 500)),
                    jsonb_build_object('type', 'plain_text',
                        'text', alert_delivery.slack_text('Severity: ' || (m ->> 'severity'), 500)),
                    jsonb_build_object('type', 'plain_text',
                        'text', alert_delivery.slack_text('Source: ' || (m ->> 'source'), 500)))),
                jsonb_build_object('type', 'context', 'elements', jsonb_build_array(
                    jsonb_build_object('type', 'plain_text', 'emoji', false,
                        'text', alert_delivery.slack_text(concat_ws(' · ', 'Alert #' || (m ->> 'id'),
                                                     nullif(alert_delivery.details_text(m -> 'details'), ''),
                                                     'Runbook: ' || (m ->> 'runbook_url')),
                                           1000))))))
$$;

CREATE FUNCTION alert_delivery.format_slack(p_event text, p_msgs jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'text', alert_delivery.slack_text(alert_delivery.headline(p_event, p_msgs), 300),
        'attachments', jsonb_agg(alert_delivery.slack_attachment(p_event, m) ORDER BY i))
    FROM jsonb_array_elements(p_msgs) WITH ORDINALITY AS t(m, i));
END
$$;

CREATE FUNCTION alert_delivery.mattermost_attachment(p_event text, m jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
            'fallback', alert_delivery.mattermost_plain(alert_delivery.headline(p_event, jsonb_build_array(m)), 600),
            'color', CASE WHEN p_event = 'resolve' THEN '#008000'
                          WHEN m ->> 'severity' = 'CRITICAL' THEN '#FF0000'
                          WHEN m ->> 'severity' = 'WARNING' THEN '#FFA500' ELSE '#439FE0' END,
            'title', alert_delivery.mattermost_plain(format('%s [%s] %s', alert_delivery.event_label(p_event),
                                             m ->> 'severity', m ->> 'title'), 500),
            'title_link', m ->> 'runbook_url',
            'text', alert_delivery.mattermost_text(coalesce(nullif(btrim(m ->> 'description'), ''),
                                             '(no description)'), 6000),
            'fields', jsonb_build_array(
                jsonb_build_object('short', true, 'title', 'Operation',
                                   'value', alert_delivery.mattermost_text(m ->> 'operation_type', 400)),
                jsonb_build_object('short', true, 'title', 'Type',
                                   'value', alert_delivery.mattermost_text(m ->> 'alert_type', 400)),
                jsonb_build_object('short', true, 'title', 'Severity',
                                   'value', m ->> 'severity'),
                jsonb_build_object('short', false, 'title', 'Details',
                                   'value', alert_delivery.mattermost_text(alert_delivery.details_text(m -> 'details'), 1000))),
            'footer', alert_delivery.mattermost_plain('alert-delivery · alert #' || (m ->> 'id'), 200)))
$$;

CREATE FUNCTION alert_delivery.format_mattermost(p_event text, p_msgs jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'text', alert_delivery.mattermost_text(alert_delivery.headline(p_event, p_msgs), 600),
        'attachments', jsonb_agg(alert_delivery.mattermost_attachment(p_event, m) ORDER BY i))
    FROM jsonb_array_elements(p_msgs) WITH ORDINALITY AS t(m, i));
END
$$;

-- PagerDuty Events API v2 without routing_key: the delivery engine adds the decrypted key.
-- One event per alert (PagerDuty deduplicates by dedup_key, so it is never grouped).
CREATE FUNCTION alert_delivery.format_pagerduty(p_event text, p_msgs jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    m jsonb := p_msgs -> 0;
BEGIN
    RETURN CASE WHEN p_event IN ('resolve', 'acknowledge')
        THEN jsonb_build_object('event_action', p_event,
                                'dedup_key', 'alert-delivery/' || (m ->> 'fingerprint'))
        ELSE jsonb_build_object(
            'event_action', 'trigger',
            'dedup_key', 'alert-delivery/' || (m ->> 'fingerprint'),
            'client', 'alert-delivery',
            'payload', jsonb_build_object(
                'summary', alert_delivery.clean_text(alert_delivery.headline(p_event, jsonb_build_array(m)), 1024),
                'source', alert_delivery.clean_text(m ->> 'source', 255),
                -- An escalation raises the level one step; error is PagerDuty's step below critical.
                'severity', CASE WHEN m ->> 'severity' = 'CRITICAL' THEN 'critical'
                                 WHEN m ->> 'severity' = 'WARNING'
                                     THEN CASE WHEN p_event = 'escalate' THEN 'error'
                                               ELSE 'warning' END
                                 WHEN p_event = 'escalate' THEN 'warning' ELSE 'info' END,
                'timestamp', m ->> 'created_at',
                'component', alert_delivery.clean_text(m ->> 'operation_type', 255),
                'group', alert_delivery.clean_text(m ->> 'source', 255),
                'class', alert_delivery.clean_text(m ->> 'alert_type', 255),
                'custom_details', jsonb_build_object(
                    'alert_id', m -> 'id', 'description', alert_delivery.clean_text(m ->> 'description', 4000),
                    'occurrences', m -> 'occurrences', 'details', m -> 'details')),
            'links', CASE WHEN m ->> 'runbook_url' IS NULL THEN '[]'::jsonb
                          ELSE jsonb_build_array(jsonb_build_object(
                              'href', m ->> 'runbook_url', 'text', 'Runbook')) END)
        END;
END
$$;

CREATE FUNCTION alert_delivery.email_block_text(p_event text, m jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT concat_ws(E'\n',
        alert_delivery.clean_text(format('%s [%s] %s', alert_delivery.event_label(p_event), m ->> 'severity', m ->> 'title'), 500),
        'Operation: ' || alert_delivery.clean_text(m ->> 'operation_type', 200),
        'Alert type: ' || alert_delivery.clean_text(m ->> 'alert_type', 200),
        'Source: ' || alert_delivery.clean_text(m ->> 'source', 200),
        'Started: ' || (m ->> 'created_at'),
        'Details: ' || nullif(alert_delivery.clean_text(alert_delivery.details_text(m -> 'details'), 1000), ''),
        'Runbook: ' || (m ->> 'runbook_url'),
        '',
        alert_delivery.clean_text(m ->> 'description', 8000))
$$;

CREATE FUNCTION alert_delivery.email_block_html(p_event text, m jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT concat(
        '<h2 style="color:', CASE WHEN p_event = 'resolve' THEN '#2EB67D'
                                  WHEN m ->> 'severity' = 'CRITICAL' THEN '#E01E5A'
                                  WHEN m ->> 'severity' = 'WARNING' THEN '#ECB22E'
                                  ELSE '#36C5F0' END, '">',
        alert_delivery.html_text(format('%s [%s] %s', alert_delivery.event_label(p_event), m ->> 'severity', m ->> 'title'), 500),
        '</h2><table>',
        '<tr><th>Operation</th><td>', alert_delivery.html_text(m ->> 'operation_type', 200), '</td></tr>',
        '<tr><th>Alert type</th><td>', alert_delivery.html_text(m ->> 'alert_type', 200), '</td></tr>',
        '<tr><th>Source</th><td>', alert_delivery.html_text(m ->> 'source', 200), '</td></tr>',
        '<tr><th>Started</th><td>', alert_delivery.html_text(m ->> 'created_at', 40), '</td></tr>',
        '<tr><th>Details</th><td>', alert_delivery.html_text(alert_delivery.details_text(m -> 'details'), 1000), '</td></tr>',
        '</table>',
        CASE WHEN m ->> 'runbook_url' IS NOT NULL
             THEN '<p><a href="' || alert_delivery.html_text(m ->> 'runbook_url', 2000) || '">Runbook</a></p>' END,
        '<pre>', alert_delivery.html_text(m ->> 'description', 8000), '</pre>')
$$;

CREATE FUNCTION alert_delivery.format_email(p_event text, p_msgs jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'subject', alert_delivery.subject_text(CASE WHEN jsonb_array_length(p_msgs) = 1
            THEN format('[%s] [%s] %s: %s', alert_delivery.event_label(p_event), p_msgs -> 0 ->> 'severity',
                        p_msgs -> 0 ->> 'operation_type', p_msgs -> 0 ->> 'title')
            ELSE format('[%s] [%s] %s alerts: %s', alert_delivery.event_label(p_event),
                        p_msgs -> 0 ->> 'severity', jsonb_array_length(p_msgs),
                        (SELECT string_agg(DISTINCT e ->> 'operation_type', ', ')
                         FROM jsonb_array_elements(p_msgs) e)) END, 200),
        'text', string_agg(alert_delivery.email_block_text(p_event, m), E'\n\n---\n\n' ORDER BY i),
        'html', '<html><body>' || string_agg(alert_delivery.email_block_html(p_event, m), '<hr>' ORDER BY i)
                || '</body></html>')
    FROM jsonb_array_elements(p_msgs) WITH ORDINALITY AS t(m, i));
END
$$;

CREATE FUNCTION alert_delivery.format_inbox(p_event text, p_msgs jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'title', alert_delivery.clean_text(alert_delivery.headline(p_event, p_msgs), 200),
        'severity', p_msgs -> 0 ->> 'severity',
        'body', alert_delivery.clean_text(string_agg(alert_delivery.email_block_text(p_event, m), E'\n\n' ORDER BY i), 4000))
    FROM jsonb_array_elements(p_msgs) WITH ORDINALITY AS t(m, i));
END
$$;

-- The generic webhook: a versioned envelope whose id is stable for this notification.
CREATE FUNCTION alert_delivery.webhook_alert(m jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT m || jsonb_build_object('title', alert_delivery.clean_text(m ->> 'title', 1000),
                                   'description', alert_delivery.clean_text(m ->> 'description', 10000))
$$;

CREATE FUNCTION alert_delivery.format_webhook(p_event text, p_msgs jsonb, p_at timestamptz) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'version', '1',
        'type', 'alert.' || CASE p_event WHEN 'trigger' THEN 'triggered'
                                         WHEN 'resolve' THEN 'resolved'
                                         WHEN 'acknowledge' THEN 'acknowledged'
                                         WHEN 'escalate' THEN 'escalated' ELSE 'test' END,
        'id', 'evt_' || md5(p_event || ':' || (SELECT string_agg(e ->> 'id', ',')
                                                FROM jsonb_array_elements(p_msgs) e)
                            || ':' || alert_delivery.utc_iso_us(p_at)),
        'timestamp', alert_delivery.utc_iso_us(p_at),
        'data', jsonb_build_object(
            'count', jsonb_array_length(p_msgs),
            'alerts', (SELECT jsonb_agg(alert_delivery.webhook_alert(m) ORDER BY i)
                       FROM jsonb_array_elements(p_msgs) WITH ORDINALITY AS t(m, i)))));
END
$$;

CREATE FUNCTION alert_delivery.format_messages(p_kind text, p_event text, p_msgs jsonb,
                                p_at timestamptz DEFAULT now()) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT CASE p_kind
        WHEN 'slack' THEN alert_delivery.format_slack(p_event, p_msgs)
        WHEN 'mattermost' THEN alert_delivery.format_mattermost(p_event, p_msgs)
        WHEN 'pagerduty' THEN alert_delivery.format_pagerduty(p_event, p_msgs)
        WHEN 'email' THEN alert_delivery.format_email(p_event, p_msgs)
        WHEN 'inbox' THEN alert_delivery.format_inbox(p_event, p_msgs)
        ELSE alert_delivery.format_webhook(p_event, p_msgs, p_at) END);
END
$$;

-- The body for a webhook kind, event and alerts (in this order): also for the escalation job.
CREATE FUNCTION alert_delivery.format_payload(p_kind text, p_event text, p_alert_ids bigint[],
                               p_at timestamptz DEFAULT now()) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT alert_delivery.format_messages(p_kind, p_event,
        (SELECT jsonb_agg(alert_delivery.alert_message(a) ORDER BY array_position(p_alert_ids, a.alert_id))
         FROM alert_delivery.alerts a WHERE a.alert_id = ANY (p_alert_ids)), p_at));
END
$$;

-- One more alert in a batch's trigger payload without formatting the whole batch again (the
-- result equals format_payload of all of them: tests/integration/test_alerting_parity.py). NULL
-- for kinds that are simply formatted again.
CREATE FUNCTION alert_delivery.append_to_payload(p_kind text, p_payload jsonb, p_ids bigint[],
                                                 p_msg jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_n integer := cardinality(p_ids);
    v_first alert_delivery.alerts;
    v_head text;
BEGIN
    IF p_kind NOT IN ('slack', 'mattermost', 'email', 'webhook') OR v_n < 2 THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_first FROM alert_delivery.alerts a WHERE a.alert_id = p_ids[1];
    v_head := format('%s: %s alerts (%s)', alert_delivery.event_label('trigger'), v_n,
                     v_first.alert_type);
    IF p_kind = 'slack' THEN
        RETURN jsonb_build_object(
            'text', alert_delivery.slack_text(v_head, 300),
            'attachments', (p_payload -> 'attachments')
                           || jsonb_build_array(alert_delivery.slack_attachment('trigger', p_msg)));
    ELSIF p_kind = 'mattermost' THEN
        RETURN jsonb_build_object(
            'text', alert_delivery.mattermost_text(v_head, 600),
            'attachments', (p_payload -> 'attachments') || jsonb_build_array(
                               alert_delivery.mattermost_attachment('trigger', p_msg)));
    ELSIF p_kind = 'email' THEN
        RETURN jsonb_build_object(
            'subject', alert_delivery.subject_text(format('[%s] [%s] %s alerts: %s',
                alert_delivery.event_label('trigger'), v_first.severity, v_n,
                (SELECT string_agg(DISTINCT a.operation_type, ', ')
                 FROM alert_delivery.alerts a WHERE a.alert_id = ANY (p_ids))), 200),
            'text', (p_payload ->> 'text') || E'\n\n---\n\n'
                    || alert_delivery.email_block_text('trigger', p_msg),
            'html', left(p_payload ->> 'html', -14) || '<hr>'
                    || alert_delivery.email_block_html('trigger', p_msg) || '</body></html>');
    END IF;
    RETURN jsonb_build_object(
        'version', '1', 'type', 'alert.triggered',
        'id', 'evt_' || md5('trigger:' || array_to_string(p_ids, ',') || ':'
                            || alert_delivery.utc_iso_us(now())),
        'timestamp', alert_delivery.utc_iso_us(now()),
        'data', jsonb_build_object(
            'count', v_n,
            'alerts', (p_payload -> 'data' -> 'alerts')
                      || jsonb_build_array(alert_delivery.webhook_alert(p_msg))));
END
$$;

-- Pipeline pieces ------------------------------------------------------------------------------
CREATE FUNCTION alert_delivery.log_suppressed(p_alert_id bigint, p_reason text, p_detail text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
    VALUES (p_alert_id, 'suppressed_' || p_reason, p_detail);
END
$$;

-- A single-SELECT SQL set-returning function, so raise_alert_batch's LATERAL inlines it.
CREATE FUNCTION alert_delivery.silence_for(p_operation text, p_type text)
RETURNS TABLE (silence_id bigint) LANGUAGE sql STABLE AS $$
    SELECT s.silence_id FROM alert_delivery.silences s
    WHERE s.expired_at IS NULL AND s.starts_at <= now() AND s.ends_at > now()
      AND s.operation_type IN ('ALL', p_operation) AND s.alert_type IN ('ALL', p_type)
    ORDER BY s.ends_at DESC, s.silence_id LIMIT 1
$$;

CREATE FUNCTION alert_delivery.matching_silence(a alert_delivery.alerts) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT f.silence_id FROM alert_delivery.silence_for(a.operation_type, a.alert_type) f);
END
$$;

-- An open alert of a source severity (silenced or not, as in Alertmanager) inhibits targets.
CREATE FUNCTION alert_delivery.inhibiting_alert(a alert_delivery.alerts) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- Two branches rather than an OR, so the same-operation case uses alerts_open_operation.
    RETURN (
    SELECT x.alert_id FROM (
        SELECT s.alert_id FROM alert_delivery.inhibit_rules r
        CROSS JOIN LATERAL (
            SELECT s.alert_id FROM alert_delivery.alerts s
            WHERE s.status IN ('firing', 'acknowledged') AND s.severity = r.source_severity
              AND s.operation_type = a.operation_type AND s.alert_id <> a.alert_id
            ORDER BY s.alert_id LIMIT 1) s
        WHERE r.active AND r.equal_operation AND a.severity = ANY (r.target_severities)
        UNION ALL
        SELECT s.alert_id FROM alert_delivery.inhibit_rules r
        CROSS JOIN LATERAL (
            SELECT s.alert_id FROM alert_delivery.alerts s
            WHERE s.status IN ('firing', 'acknowledged') AND s.severity = r.source_severity
              AND s.alert_id <> a.alert_id
            ORDER BY s.alert_id LIMIT 1) s
        WHERE r.active AND NOT r.equal_operation AND a.severity = ANY (r.target_severities)
    ) x ORDER BY x.alert_id LIMIT 1);
END
$$;

-- Every active webhook a matching rule names, directly or by kind; per webhook the rule with the
-- lowest priority number decides the group window and escalation delay.
CREATE FUNCTION alert_delivery.route_targets(a alert_delivery.alerts, p_fallback boolean)
RETURNS TABLE (webhook_id bigint, kind text, rule_id bigint, group_window_s integer,
               group_by text[], max_batch integer, escalate_after_s integer,
               repeat_interval_s integer)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT DISTINCT ON (w.webhook_id) w.webhook_id, w.kind, r.rule_id, r.group_window_s,
           r.group_by, r.max_batch, r.escalate_after_s, r.repeat_interval_s
    FROM alert_delivery.routing_rules r
    JOIN alert_delivery.webhooks w ON w.active AND (w.kind = ANY (r.target_kinds) OR EXISTS (
        SELECT 1 FROM alert_delivery.routing_rule_targets t
        WHERE t.rule_id = r.rule_id AND t.webhook_id = w.webhook_id))
    WHERE r.active AND r.is_fallback = p_fallback AND r.severity IN ('ALL', a.severity)
      AND r.alert_type IN ('ALL', a.alert_type) AND r.operation_type IN ('ALL', a.operation_type)
    ORDER BY w.webhook_id, r.priority, r.rule_id;
END
$$;

-- Set-returning SQL (one row) so raise_alert_batch's LATERAL inlines it.
CREATE FUNCTION alert_delivery.group_values(a alert_delivery.alerts, p_group_by text[])
RETURNS TABLE (batch_key text) LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(CASE g WHEN 'source' THEN a.source
                                      WHEN 'operation_type' THEN a.operation_type
                                      WHEN 'alert_type' THEN a.alert_type ELSE a.severity END,
                               '|' ORDER BY i), '')
    FROM unnest(p_group_by) WITH ORDINALITY AS u(g, i)
$$;

CREATE FUNCTION alert_delivery.batch_key(a alert_delivery.alerts, p_group_by text[]) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT k.batch_key FROM alert_delivery.group_values(a, p_group_by) k);
END
$$;

-- One trigger notification for one webhook: joins an open batch of the same group key while its
-- window lasts (at most max_batch alerts), otherwise opens a new row due when the window ends.
CREATE FUNCTION alert_delivery.enqueue_one(a alert_delivery.alerts, p_webhook_id bigint, p_kind text, p_window integer,
                            p_group_by text[], p_max_batch integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_key text;
    v_id bigint;
    v_ids bigint[];
    v_payload jsonb;
BEGIN
    IF p_window > 0 AND p_kind <> 'pagerduty' THEN
        v_key := 'trigger:' || alert_delivery.batch_key(a, p_group_by);
        -- Only the newest open batch of the key is a candidate: full ones stay untouched and the
        -- lookup stays one index probe however many batches wait.
        SELECT q.delivery_id, q.alert_ids, q.payload INTO v_id, v_ids, v_payload
        FROM alert_delivery.delivery_queue q
        WHERE q.webhook_id = p_webhook_id AND q.group_key = v_key AND q.status = 'pending'
          AND q.attempts = 0 AND q.event = 'trigger' AND q.next_attempt_at > now()
        ORDER BY q.delivery_id DESC LIMIT 1
        FOR UPDATE SKIP LOCKED;
        IF FOUND AND cardinality(v_ids) < p_max_batch THEN
            IF NOT a.alert_id = ANY (v_ids) THEN
                v_ids := v_ids || a.alert_id;
                v_payload := coalesce(
                    alert_delivery.append_to_payload(p_kind, v_payload, v_ids,
                                                     alert_delivery.alert_message(a)),
                    alert_delivery.format_payload(p_kind, 'trigger', v_ids));
                UPDATE alert_delivery.delivery_queue
                SET alert_ids = v_ids, payload = v_payload, updated_at = now()
                WHERE delivery_id = v_id;
            END IF;
            INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event, detail)
            VALUES (v_id, a.alert_id, p_webhook_id, 'queued',
                    format('grouped, %s alert(s) in batch', cardinality(v_ids)));
            RETURN v_id;
        END IF;
    END IF;
    v_id := NULL;
    INSERT INTO alert_delivery.delivery_queue (alert_id, alert_ids, webhook_id, event, seq, group_key, payload,
                                next_attempt_at)
    VALUES (a.alert_id, ARRAY[a.alert_id], p_webhook_id, 'trigger', a.notify_count, v_key,
            alert_delivery.format_messages(p_kind, 'trigger', jsonb_build_array(alert_delivery.alert_message(a))),
            CASE WHEN v_key IS NULL THEN now() ELSE now() + make_interval(secs => p_window) END)
    ON CONFLICT (alert_id, webhook_id, event, seq) DO NOTHING
    RETURNING delivery_id INTO v_id;
    IF v_id IS NOT NULL THEN
        INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event, detail)
        VALUES (v_id, a.alert_id, p_webhook_id, 'queued', 'trigger');
    END IF;
    RETURN v_id;
END $$;

-- Route and enqueue a trigger; the fallback rules apply only when nothing else resolves to an
-- active webhook, and when even they do not, a log row says so.
CREATE FUNCTION alert_delivery.enqueue_trigger(p_alert_id bigint) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    a alert_delivery.alerts;
    t record;
    v_fallback boolean;
    v_id bigint;
    v_max bigint := 0;
    v_n integer := 0;
    v_esc integer;
    v_rep integer;
BEGIN
    SELECT * INTO a FROM alert_delivery.alerts WHERE alert_delivery.alerts.alert_id = p_alert_id;
    FOREACH v_fallback IN ARRAY ARRAY[false, true] LOOP
        EXIT WHEN v_n > 0;
        FOR t IN SELECT * FROM alert_delivery.route_targets(a, v_fallback) LOOP
            v_id := alert_delivery.enqueue_one(a, t.webhook_id, t.kind, t.group_window_s, t.group_by,
                                t.max_batch);
            IF v_id IS NOT NULL THEN
                v_n := v_n + 1;
                v_max := greatest(v_max, v_id);
            END IF;
            v_esc := least(v_esc, t.escalate_after_s);
            v_rep := least(v_rep, t.repeat_interval_s);
        END LOOP;
    END LOOP;
    IF v_n = 0 THEN
        PERFORM alert_delivery.log_suppressed(a.alert_id, 'no_route',
            'no active routing rule (fallback included) resolves to an active webhook');
        RETURN 0;
    END IF;
    UPDATE alert_delivery.alerts SET last_notified_at = now(), notify_count = notify_count + 1,
                      escalate_after_s = v_esc, repeat_interval_s = v_rep, updated_at = now()
    WHERE alert_delivery.alerts.alert_id = a.alert_id;
    PERFORM pg_notify('alert_delivery_queue', v_max::text);
    RETURN v_n;
END $$;

-- Resolve and acknowledge go to the webhooks that received the trigger, for the kinds that
-- take them.
CREATE FUNCTION alert_delivery.enqueue_followup(p_alert_id bigint, p_event text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    v_id bigint;
    v_max bigint := 0;
    v_n integer := 0;
BEGIN
    FOR t IN
        SELECT DISTINCT w.webhook_id, w.kind FROM alert_delivery.delivery_queue q
        JOIN alert_delivery.webhooks w ON w.webhook_id = q.webhook_id
        WHERE q.alert_ids @> ARRAY[p_alert_id] AND q.event = 'trigger' AND w.active
          AND w.kind IN ('slack', 'mattermost', 'pagerduty', 'webhook')
        ORDER BY w.webhook_id
    LOOP
        INSERT INTO alert_delivery.delivery_queue (alert_id, alert_ids, webhook_id, event, payload)
        VALUES (p_alert_id, ARRAY[p_alert_id], t.webhook_id, p_event,
                alert_delivery.format_payload(t.kind, p_event, ARRAY[p_alert_id]))
        ON CONFLICT (alert_id, webhook_id, event, seq) DO NOTHING
        RETURNING delivery_id INTO v_id;
        IF v_id IS NOT NULL THEN
            INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event, detail)
            VALUES (v_id, p_alert_id, t.webhook_id, 'queued', p_event);
            v_n := v_n + 1;
            v_max := greatest(v_max, v_id);
        END IF;
    END LOOP;
    IF v_n > 0 THEN
        PERFORM pg_notify('alert_delivery_queue', v_max::text);
    END IF;
    RETURN v_n;
END $$;

-- Everything after the insert of a new alert: content dedup, silence, inhibition, routing.
CREATE FUNCTION alert_delivery.process_new_alert(p_alert_id bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a alert_delivery.alerts;
    v_other bigint;
BEGIN
    SELECT * INTO a FROM alert_delivery.alerts WHERE alert_delivery.alerts.alert_id = p_alert_id;
    SELECT o.alert_id INTO v_other FROM alert_delivery.alerts o
    WHERE o.content_hash = a.content_hash AND o.created_at > now() - interval '24 hours'
      AND o.alert_id <> a.alert_id AND o.last_notified_at > now() - interval '24 hours'
    ORDER BY o.alert_id DESC LIMIT 1;
    IF v_other IS NOT NULL THEN
        PERFORM alert_delivery.log_suppressed(a.alert_id, 'duplicate_content',
            format('same content as alert %s, notified within 24 h', v_other));
        RETURN 'suppressed_duplicate_content';
    END IF;
    v_other := alert_delivery.matching_silence(a);
    IF v_other IS NOT NULL THEN
        UPDATE alert_delivery.alerts SET held_reason = 'silenced', held_by = v_other
        WHERE alert_delivery.alerts.alert_id = a.alert_id;
        PERFORM alert_delivery.log_suppressed(a.alert_id, 'silenced',
            format('silence %s; notifies when it ends if still firing', v_other));
        RETURN 'silenced';
    END IF;
    v_other := alert_delivery.inhibiting_alert(a);
    IF v_other IS NOT NULL THEN
        UPDATE alert_delivery.alerts SET held_reason = 'inhibited', held_by = v_other
        WHERE alert_delivery.alerts.alert_id = a.alert_id;
        PERFORM alert_delivery.log_suppressed(a.alert_id, 'inhibited',
            format('inhibited by open alert %s; notifies when it resolves if still firing',
                   v_other));
        RETURN 'inhibited';
    END IF;
    RETURN CASE WHEN alert_delivery.enqueue_trigger(a.alert_id) > 0 THEN 'notified' ELSE 'unrouted' END;
END $$;

-- A plain INSERT INTO alerts goes through the same pipeline: the fingerprint and hash are filled
-- in before the insert, the pipeline runs after it (raise_alert runs it itself).
CREATE FUNCTION alert_delivery.alerts_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(NEW.fingerprint, '') = '' THEN
        NEW.fingerprint := alert_delivery.alert_fingerprint(NEW.source, NEW.operation_type, NEW.alert_type,
                                             NEW.severity);
    END IF;
    IF coalesce(NEW.content_hash, '') = '' THEN
        NEW.content_hash := alert_delivery.alert_content_hash(NEW.fingerprint, NEW.title, NEW.description);
    END IF;
    IF NOT NEW.payload ? 'runbook_url' THEN
        NEW.payload := NEW.payload || coalesce((SELECT jsonb_build_object('runbook_url', r.url)
                                                FROM alert_delivery.runbooks r
                                                WHERE r.alert_type = NEW.alert_type), '{}');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER alerts_before_insert BEFORE INSERT ON alert_delivery.alerts
    FOR EACH ROW EXECUTE FUNCTION alert_delivery.alerts_before_insert();

CREATE FUNCTION alert_delivery.alerts_after_insert() RETURNS trigger LANGUAGE plpgsql
-- Generic plans: custom plans of the small lookups cost more to plan than to run.
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF coalesce(current_setting('alert_delivery.raising', true), '') <> 'on' THEN
        PERFORM alert_delivery.process_new_alert(NEW.alert_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER alerts_after_insert AFTER INSERT ON alert_delivery.alerts
    FOR EACH ROW EXECUTE FUNCTION alert_delivery.alerts_after_insert();

CREATE FUNCTION alert_delivery.invalid_alert(p_field text, p_message text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = format('raise_alert: %s %s', p_field, p_message),
                          ERRCODE = 'invalid_parameter_value', COLUMN = p_field;
END $$;

CREATE FUNCTION alert_delivery.required_text(p_field text, p_value text, p_max integer) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        PERFORM alert_delivery.invalid_alert(p_field, 'is required and must not be empty');
    END IF;
    IF char_length(p_value) > p_max THEN
        PERFORM alert_delivery.invalid_alert(p_field, format('is longer than %s characters', p_max));
    END IF;
    RETURN btrim(p_value);
END $$;

-- The producer API. Invalid input raises SQLSTATE 22023 naming the field (error COLUMN too);
-- the caller's transaction decides what to do. Returns the alert (new or the open duplicate)
-- and what happened: notified, repeated, deduplicated, suppressed_duplicate_content, silenced,
-- inhibited, unrouted.
CREATE FUNCTION alert_delivery.raise_alert(p_source text, p_operation_type text, p_alert_type text,
                            p_severity text, p_title text, p_description text DEFAULT '',
                            p_details jsonb DEFAULT '{}', p_partition_start timestamptz DEFAULT NULL,
                            p_anomaly_id bigint DEFAULT NULL, p_correlation_id bigint DEFAULT NULL)
RETURNS TABLE (alert_id bigint, outcome text) LANGUAGE plpgsql
-- Generic plans: custom plans of the small lookups cost more to plan than to run.
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_source text := alert_delivery.required_text('source', p_source, 200);
    v_op text := alert_delivery.required_text('operation_type', p_operation_type, 200);
    v_type text := alert_delivery.required_text('alert_type', p_alert_type, 200);
    v_sev text := upper(alert_delivery.required_text('severity', p_severity, 20));
    v_title text := alert_delivery.required_text('title', p_title, 10000);
    v_fp text;
    v_existing alert_delivery.alerts;
    v_id bigint;
BEGIN
    IF v_sev NOT IN ('INFO', 'WARNING', 'CRITICAL') THEN
        PERFORM alert_delivery.invalid_alert('severity', format('must be INFO, WARNING or CRITICAL, not %s',
                                                 left(p_severity, 40)));
    END IF;
    IF p_details IS NOT NULL AND jsonb_typeof(p_details) <> 'object' THEN
        PERFORM alert_delivery.invalid_alert('details', 'must be a JSON object');
    END IF;
    v_fp := alert_delivery.alert_fingerprint(v_source, v_op, v_type, v_sev);
    LOOP
        SELECT * INTO v_existing FROM alert_delivery.alerts a
        WHERE a.fingerprint = v_fp AND a.status IN ('firing', 'acknowledged')
        FOR UPDATE;
        IF FOUND THEN
            UPDATE alert_delivery.alerts SET occurrences = occurrences + 1, last_seen_at = now(),
                              updated_at = now()
            WHERE alert_id = v_existing.alert_id;
            alert_id := v_existing.alert_id;
            IF v_existing.status = 'firing' AND v_existing.held_reason IS NULL
               AND v_existing.last_notified_at <= now()
                   - make_interval(secs => coalesce(v_existing.repeat_interval_s, 14400)) THEN
                outcome := CASE WHEN alert_delivery.enqueue_trigger(v_existing.alert_id) > 0 THEN 'repeated'
                                ELSE 'unrouted' END;
            ELSE
                PERFORM alert_delivery.log_suppressed(v_existing.alert_id, 'duplicate',
                    format('fingerprint still %s as alert %s (%s occurrences); repeat interval %s s',
                           v_existing.status, v_existing.alert_id, v_existing.occurrences + 1,
                           coalesce(v_existing.repeat_interval_s, 14400)));
                outcome := 'deduplicated';
            END IF;
            RETURN NEXT;
            RETURN;
        END IF;
        PERFORM set_config('alert_delivery.raising', 'on', true);
        INSERT INTO alert_delivery.alerts (fingerprint, content_hash, source, operation_type, alert_type, severity,
                            title, description, payload, partition_start, anomaly_id,
                            correlation_id)
        VALUES (v_fp, alert_delivery.alert_content_hash(v_fp, v_title, coalesce(p_description, '')), v_source,
                v_op, v_type, v_sev, v_title, coalesce(p_description, ''),
                coalesce(p_details, '{}'), p_partition_start, p_anomaly_id, p_correlation_id)
        ON CONFLICT (fingerprint) WHERE status IN ('firing', 'acknowledged') DO NOTHING
        RETURNING alert_delivery.alerts.alert_id INTO v_id;
        PERFORM set_config('alert_delivery.raising', 'off', true);
        IF v_id IS NOT NULL THEN
            alert_id := v_id;
            outcome := alert_delivery.process_new_alert(v_id);
            RETURN NEXT;
            RETURN;
        END IF;
        -- A concurrent transaction opened the same fingerprint: dedup against it.
    END LOOP;
END $$;

CREATE FUNCTION alert_delivery.json_text(p jsonb, p_field text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF jsonb_typeof(p -> p_field) NOT IN ('string', 'null') THEN
        PERFORM alert_delivery.invalid_alert(p_field, 'must be a string');
    END IF;
    RETURN p ->> p_field;
END $$;

-- The same API taking one JSON object; unknown fields are rejected by name.
CREATE FUNCTION alert_delivery.raise_alert(p_alert jsonb)
RETURNS TABLE (alert_id bigint, outcome text) LANGUAGE plpgsql
-- Generic plans: custom plans of the small lookups cost more to plan than to run.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    k text;
BEGIN
    IF p_alert IS NULL OR jsonb_typeof(p_alert) <> 'object' THEN
        PERFORM alert_delivery.invalid_alert('alert', 'must be a JSON object');
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_alert) LOOP
        IF k NOT IN ('source', 'operation_type', 'alert_type', 'severity', 'title', 'description',
                     'details', 'partition_start', 'anomaly_id', 'correlation_id') THEN
            PERFORM alert_delivery.invalid_alert(left(k, 60), 'is not a known field');
        END IF;
    END LOOP;
    IF jsonb_typeof(p_alert -> 'details') NOT IN ('object', 'null') THEN
        PERFORM alert_delivery.invalid_alert('details', 'must be a JSON object');
    END IF;
    IF jsonb_typeof(p_alert -> 'anomaly_id') NOT IN ('number', 'null')
       OR jsonb_typeof(p_alert -> 'correlation_id') NOT IN ('number', 'null') THEN
        PERFORM alert_delivery.invalid_alert('anomaly_id/correlation_id', 'must be a number');
    END IF;
    RETURN QUERY SELECT * FROM alert_delivery.raise_alert(
        coalesce(alert_delivery.json_text(p_alert, 'source'), 'api'), alert_delivery.json_text(p_alert, 'operation_type'),
        alert_delivery.json_text(p_alert, 'alert_type'), alert_delivery.json_text(p_alert, 'severity'),
        alert_delivery.json_text(p_alert, 'title'), coalesce(alert_delivery.json_text(p_alert, 'description'), ''),
        coalesce(p_alert -> 'details', '{}'),
        (alert_delivery.json_text(p_alert, 'partition_start'))::timestamptz,
        (p_alert ->> 'anomaly_id')::bigint, (p_alert ->> 'correlation_id')::bigint);
END $$;

-- Batches ---------------------------------------------------------------------------------------
-- raise_alerts(array) gives the result of raise_alert(jsonb) on each element in order
-- (tests/integration/test_alerting_batch.py compares every row), but set-based: a batch of new,
-- distinct alerts is inserted, classified, routed, grouped, formatted and logged with a few
-- statements, and each queue row is written once instead of once per alert joining its batch.
-- Anything that path does not cover (invalid input, a fingerprint still open or twice in the
-- batch, one group with different batch sizes, a concurrent insert) runs per alert instead.
CREATE TYPE alert_delivery.alert_input AS (
    i integer, source text, operation_type text, alert_type text, severity text, title text,
    description text, details jsonb, partition_start timestamptz, anomaly_id bigint,
    correlation_id bigint, fingerprint text, content_hash text);

-- What process_new_alert decided before routing (outcome NULL: route it).
CREATE TYPE alert_delivery.alert_verdict AS (
    i integer, alert_id bigint, outcome text, other_id bigint);

-- One (alert, webhook) trigger notification and its place: an open batch of an earlier
-- transaction (b0_id), or position pos of new row batch_no of its (webhook, group key).
CREATE TYPE alert_delivery.alert_pair AS (
    i integer, alert_id bigint, webhook_id bigint, kind text, group_window_s integer,
    max_batch integer, escalate_after_s integer, repeat_interval_s integer, group_key text,
    rn integer, b0_id bigint, batch_no integer, pos integer, detail text);

-- The element as raise_alert(jsonb) reads it, or NULL unless that function surely accepts it.
CREATE FUNCTION alert_delivery.parse_alert_input(a jsonb, i integer) RETURNS alert_delivery.alert_input
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN jsonb_typeof(a) = 'object'
        AND a - ARRAY['source', 'operation_type', 'alert_type', 'severity', 'title', 'description',
                      'details', 'partition_start', 'anomaly_id', 'correlation_id'] = '{}'::jsonb
        AND coalesce(jsonb_typeof(a -> 'source'), 'null') IN ('string', 'null')
        AND btrim(coalesce(a ->> 'source', 'api')) <> ''
        AND char_length(coalesce(a ->> 'source', 'api')) <= 200
        AND jsonb_typeof(a -> 'operation_type') = 'string'
        AND btrim(a ->> 'operation_type') <> '' AND char_length(a ->> 'operation_type') <= 200
        AND jsonb_typeof(a -> 'alert_type') = 'string'
        AND btrim(a ->> 'alert_type') <> '' AND char_length(a ->> 'alert_type') <= 200
        AND jsonb_typeof(a -> 'severity') = 'string' AND char_length(a ->> 'severity') <= 20
        AND upper(btrim(a ->> 'severity')) IN ('INFO', 'WARNING', 'CRITICAL')
        AND jsonb_typeof(a -> 'title') = 'string'
        AND btrim(a ->> 'title') <> '' AND char_length(a ->> 'title') <= 10000
        AND coalesce(jsonb_typeof(a -> 'description'), 'null') IN ('string', 'null')
        AND coalesce(jsonb_typeof(a -> 'details'), 'object') = 'object'
        AND coalesce(jsonb_typeof(a -> 'partition_start'), 'null') IN ('string', 'null')
        AND coalesce(jsonb_typeof(a -> 'anomaly_id'), 'null') IN ('number', 'null')
        AND coalesce(jsonb_typeof(a -> 'correlation_id'), 'null') IN ('number', 'null')
    THEN ROW(i, btrim(coalesce(a ->> 'source', 'api')), btrim(a ->> 'operation_type'),
             btrim(a ->> 'alert_type'), upper(btrim(a ->> 'severity')), btrim(a ->> 'title'),
             coalesce(a ->> 'description', ''), coalesce(a -> 'details', '{}'),
             (a ->> 'partition_start')::timestamptz, (a ->> 'anomaly_id')::bigint,
             (a ->> 'correlation_id')::bigint, NULL, NULL)::alert_delivery.alert_input END
$$;

-- The set-based path. Returns no rows when the batch is not for it (before writing anything);
-- raises when it finds out later, and raise_alerts rolls its subtransaction back.
CREATE FUNCTION alert_delivery.raise_alert_batch(p_alerts jsonb)
RETURNS TABLE (i integer, alert_id bigint, outcome text) LANGUAGE plpgsql
-- Generic plans: custom plans of the small lookups cost more to plan than to run.
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_in alert_delivery.alert_input[];
    v_ids bigint[];
    v_verdicts alert_delivery.alert_verdict[];
    v_pairs alert_delivery.alert_pair[];
    v_b0 record;
    v_b0_wh bigint[] := '{}';
    v_b0_key text[] := '{}';
    v_b0_id bigint[] := '{}';
    v_b0_n integer[] := '{}';
    v_b0_max integer[] := '{}';
    v_ids_b0 bigint[];
    v_payload jsonb;
    v_aid bigint;
    v_q_id bigint[];
    v_q_wh bigint[];
    v_q_aid bigint[];
BEGIN
    SELECT array_agg(alert_delivery.parse_alert_input(e.a, e.i::integer) ORDER BY e.i) INTO v_in
    FROM jsonb_array_elements(p_alerts) WITH ORDINALITY AS e(a, i);
    IF v_in IS NULL OR array_position(v_in, NULL) IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT array_agg(ROW(x.i, x.source, x.operation_type, x.alert_type, x.severity, x.title,
                         x.description, x.details, x.partition_start, x.anomaly_id,
                         x.correlation_id, f.fp,
                         alert_delivery.alert_content_hash(f.fp, x.title, x.description)
                     )::alert_delivery.alert_input ORDER BY x.i) INTO v_in
    FROM unnest(v_in) x
    CROSS JOIN LATERAL (SELECT alert_delivery.alert_fingerprint(x.source, x.operation_type,
                                                                x.alert_type, x.severity)) f(fp);
    IF (SELECT count(DISTINCT x.fingerprint) <> count(*) FROM unnest(v_in) x)
       OR EXISTS (SELECT 1 FROM alert_delivery.alerts a
                  WHERE a.fingerprint = ANY (ARRAY(SELECT x.fingerprint FROM unnest(v_in) x))
                    AND a.status IN ('firing', 'acknowledged')) THEN
        RETURN;
    END IF;

    PERFORM set_config('alert_delivery.raising', 'on', true);
    WITH ins AS (
        INSERT INTO alert_delivery.alerts (fingerprint, content_hash, source, operation_type,
                                           alert_type, severity, title, description, payload,
                                           partition_start, anomaly_id, correlation_id)
        SELECT x.fingerprint, x.content_hash, x.source, x.operation_type, x.alert_type,
               x.severity, x.title, x.description, x.details, x.partition_start, x.anomaly_id,
               x.correlation_id
        FROM unnest(v_in) x ORDER BY x.i
        RETURNING alert_delivery.alerts.alert_id, alert_delivery.alerts.fingerprint)
    SELECT array_agg(ins.alert_id ORDER BY x.i) INTO v_ids
    FROM ins JOIN unnest(v_in) x ON x.fingerprint = ins.fingerprint;
    PERFORM set_config('alert_delivery.raising', 'off', true);
    -- Ids in input order, as one insert per alert gives them.
    IF EXISTS (SELECT 1 FROM unnest(v_ids) WITH ORDINALITY u(id, n)
               WHERE u.n > 1 AND u.id <= v_ids[u.n - 1]) THEN
        RAISE EXCEPTION 'raise_alert_batch: ids out of input order';
    END IF;

    -- process_new_alert of each in order: an alert earlier in the batch inhibits a later one,
    -- a later one does not exist yet for an earlier one.
    SELECT array_agg(ROW(u.n, a.alert_id,
                         CASE WHEN d.id IS NOT NULL THEN 'suppressed_duplicate_content'
                              WHEN s.id IS NOT NULL THEN 'silenced'
                              WHEN h.id IS NOT NULL THEN 'inhibited' END,
                         coalesce(d.id, s.id, h.id))::alert_delivery.alert_verdict ORDER BY u.n)
    INTO v_verdicts
    FROM unnest(v_ids) WITH ORDINALITY u(id, n)
    JOIN alert_delivery.alerts a ON a.alert_id = u.id
    LEFT JOIN LATERAL (
        SELECT o.alert_id FROM alert_delivery.alerts o
        WHERE o.content_hash = a.content_hash AND o.created_at > now() - interval '24 hours'
          AND o.alert_id <> a.alert_id AND o.last_notified_at > now() - interval '24 hours'
        ORDER BY o.alert_id DESC LIMIT 1) d(id) ON true
    LEFT JOIN LATERAL alert_delivery.silence_for(a.operation_type, a.alert_type) s(id)
      ON d.id IS NULL
    LEFT JOIN LATERAL (
        SELECT x.alert_id FROM (
            SELECT o.alert_id FROM alert_delivery.inhibit_rules r
            CROSS JOIN LATERAL (
                SELECT o.alert_id FROM alert_delivery.alerts o
                WHERE o.status IN ('firing', 'acknowledged') AND o.severity = r.source_severity
                  AND o.operation_type = a.operation_type AND o.alert_id <> a.alert_id
                  AND (o.alert_id < a.alert_id OR NOT o.alert_id = ANY (v_ids))
                ORDER BY o.alert_id LIMIT 1) o
            WHERE r.active AND r.equal_operation AND a.severity = ANY (r.target_severities)
            UNION ALL
            SELECT o.alert_id FROM alert_delivery.inhibit_rules r
            CROSS JOIN LATERAL (
                SELECT o.alert_id FROM alert_delivery.alerts o
                WHERE o.status IN ('firing', 'acknowledged') AND o.severity = r.source_severity
                  AND o.alert_id <> a.alert_id
                  AND (o.alert_id < a.alert_id OR NOT o.alert_id = ANY (v_ids))
                ORDER BY o.alert_id LIMIT 1) o
            WHERE r.active AND NOT r.equal_operation AND a.severity = ANY (r.target_severities)
        ) x ORDER BY x.alert_id LIMIT 1) h(id) ON d.id IS NULL AND s.id IS NULL;

    -- route_targets of each alert to notify (the fallback rules only when nothing else routes),
    -- numbered (rn) per webhook and group key in alert order.
    WITH t AS (
        SELECT DISTINCT ON (v.i, r.is_fallback, w.webhook_id) v.i, a.alert_id, a AS al,
               r.is_fallback, w.webhook_id, w.kind, r.group_window_s, r.group_by, r.max_batch,
               r.escalate_after_s, r.repeat_interval_s
        FROM unnest(v_verdicts) v
        JOIN alert_delivery.alerts a ON a.alert_id = v.alert_id
        JOIN alert_delivery.routing_rules r
          ON r.active AND r.severity IN ('ALL', a.severity)
         AND r.alert_type IN ('ALL', a.alert_type) AND r.operation_type IN ('ALL', a.operation_type)
        JOIN alert_delivery.webhooks w ON w.active AND (w.kind = ANY (r.target_kinds) OR EXISTS (
            SELECT 1 FROM alert_delivery.routing_rule_targets rt
            WHERE rt.rule_id = r.rule_id AND rt.webhook_id = w.webhook_id))
        WHERE v.outcome IS NULL
        ORDER BY v.i, r.is_fallback, w.webhook_id, r.priority, r.rule_id
    ), chosen AS (
        SELECT t.*, CASE WHEN t.group_window_s > 0 AND t.kind <> 'pagerduty'
                         THEN 'trigger:' || k.batch_key END AS key
        FROM t CROSS JOIN LATERAL alert_delivery.group_values(t.al, t.group_by) k
        WHERE NOT t.is_fallback
           OR NOT EXISTS (SELECT 1 FROM t t2 WHERE t2.i = t.i AND NOT t2.is_fallback)
    ), numbered AS (
        SELECT c.*, row_number() OVER (PARTITION BY c.webhook_id, c.key ORDER BY c.i) AS rn
        FROM chosen c
    )
    SELECT array_agg(ROW(c.i, c.alert_id, c.webhook_id, c.kind, c.group_window_s, c.max_batch,
                         c.escalate_after_s, c.repeat_interval_s, c.key, c.rn,
                         NULL, NULL, NULL, NULL)::alert_delivery.alert_pair
                     ORDER BY c.i, c.webhook_id)
    INTO v_pairs
    FROM numbered c;

    IF EXISTS (SELECT 1 FROM unnest(v_pairs) p WHERE p.group_key IS NOT NULL
               GROUP BY p.webhook_id, p.group_key HAVING count(DISTINCT p.max_batch) > 1) THEN
        RAISE EXCEPTION 'raise_alert_batch: one group with different batch sizes';
    END IF;

    -- enqueue_one's lookup, once per group: the newest open batch of an earlier transaction.
    FOR v_b0 IN
        SELECT g.webhook_id, g.group_key, g.max_batch, q.delivery_id, q.alert_ids
        FROM (SELECT DISTINCT p.webhook_id, p.group_key, p.max_batch
              FROM unnest(v_pairs) p WHERE p.group_key IS NOT NULL) g
        CROSS JOIN LATERAL (
            SELECT q.delivery_id, q.alert_ids
            FROM alert_delivery.delivery_queue q
            WHERE q.webhook_id = g.webhook_id AND q.group_key = g.group_key
              AND q.status = 'pending' AND q.attempts = 0 AND q.event = 'trigger'
              AND q.next_attempt_at > now()
            ORDER BY q.delivery_id DESC LIMIT 1
            FOR UPDATE SKIP LOCKED) q
        ORDER BY g.webhook_id, g.group_key
    LOOP
        v_b0_wh := v_b0_wh || v_b0.webhook_id;
        v_b0_key := v_b0_key || v_b0.group_key;
        v_b0_id := v_b0_id || v_b0.delivery_id;
        v_b0_n := v_b0_n || cardinality(v_b0.alert_ids);
        v_b0_max := v_b0_max || v_b0.max_batch;
    END LOOP;

    -- The first alerts of a group join that batch while it has room (max_batch), the others
    -- fill new rows of max_batch alerts in order.
    SELECT array_agg(ROW(p.i, p.alert_id, p.webhook_id, p.kind, p.group_window_s, p.max_batch,
                         p.escalate_after_s, p.repeat_interval_s, p.group_key, p.rn,
                         CASE WHEN p.rn <= f.fill THEN b.id END,
                         CASE WHEN p.rn > f.fill THEN (p.rn - f.fill - 1) / p.max_batch END,
                         CASE WHEN p.rn > f.fill THEN (p.rn - f.fill - 1) % p.max_batch + 1 END,
                         CASE WHEN p.group_key IS NULL THEN 'trigger'
                              WHEN p.rn <= f.fill
                                  THEN format('grouped, %s alert(s) in batch', b.n + p.rn)
                              WHEN (p.rn - f.fill - 1) % p.max_batch = 0 THEN 'trigger'
                              ELSE format('grouped, %s alert(s) in batch',
                                          (p.rn - f.fill - 1) % p.max_batch + 1) END
                     )::alert_delivery.alert_pair ORDER BY p.i, p.webhook_id)
    INTO v_pairs
    FROM unnest(v_pairs) p
    LEFT JOIN unnest(v_b0_wh, v_b0_key, v_b0_id, v_b0_n, v_b0_max) b(wh, key, id, n, mx)
      ON b.wh = p.webhook_id AND b.key = p.group_key
    CROSS JOIN LATERAL (SELECT CASE WHEN p.group_key IS NULL THEN 0
                                    ELSE greatest(coalesce(b.mx - b.n, 0), 0) END) f(fill);

    -- Appends to an earlier batch go through append_to_payload one by one, as enqueue_one does.
    FOR v_b0 IN SELECT b.id, b.n, p.kind, array_agg(p.alert_id ORDER BY p.i) AS joined
                FROM unnest(v_b0_id, v_b0_n) b(id, n)
                JOIN unnest(v_pairs) p ON p.b0_id = b.id
                GROUP BY b.id, b.n, p.kind ORDER BY b.id LOOP
        SELECT q.alert_ids, q.payload INTO v_ids_b0, v_payload
        FROM alert_delivery.delivery_queue q WHERE q.delivery_id = v_b0.id;
        FOREACH v_aid IN ARRAY v_b0.joined LOOP
            v_ids_b0 := v_ids_b0 || v_aid;
            v_payload := coalesce(
                alert_delivery.append_to_payload(v_b0.kind, v_payload, v_ids_b0,
                    (SELECT alert_delivery.alert_message(a) FROM alert_delivery.alerts a
                     WHERE a.alert_id = v_aid)),
                alert_delivery.format_payload(v_b0.kind, 'trigger', v_ids_b0));
        END LOOP;
        UPDATE alert_delivery.delivery_queue
        SET alert_ids = v_ids_b0, payload = v_payload, updated_at = now()
        WHERE delivery_id = v_b0.id;
    END LOOP;

    -- New rows, formatted once with all their alerts, in the order enqueue_one creates them.
    WITH nb AS (
        SELECT p.webhook_id, p.group_key, min(p.kind) AS kind, min(p.i) AS first_i,
               array_agg(p.alert_id ORDER BY p.i) AS ids,
               (array_agg(p.group_window_s ORDER BY p.i))[1] AS window_s,
               jsonb_agg(alert_delivery.alert_message(a) ORDER BY p.i) AS msgs
        FROM unnest(v_pairs) p JOIN alert_delivery.alerts a ON a.alert_id = p.alert_id
        WHERE p.b0_id IS NULL
        GROUP BY p.webhook_id, p.group_key, p.batch_no,
                 CASE WHEN p.group_key IS NULL THEN p.alert_id END
    ), ins AS (
        INSERT INTO alert_delivery.delivery_queue (alert_id, alert_ids, webhook_id, event, seq,
                                                   group_key, payload, next_attempt_at)
        SELECT nb.ids[1], nb.ids, nb.webhook_id, 'trigger', 0, nb.group_key,
               alert_delivery.format_messages(nb.kind, 'trigger', nb.msgs),
               CASE WHEN nb.group_key IS NULL THEN now()
                    ELSE now() + make_interval(secs => nb.window_s) END
        FROM nb ORDER BY nb.first_i, nb.webhook_id
        RETURNING delivery_id, webhook_id, alert_ids)
    SELECT array_agg(ins.delivery_id), array_agg(ins.webhook_id), array_agg(u.aid)
    INTO v_q_id, v_q_wh, v_q_aid
    FROM ins CROSS JOIN LATERAL unnest(ins.alert_ids) u(aid);

    INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event, detail)
    SELECT l.delivery_id, l.alert_id, l.webhook_id, l.event, l.detail FROM (
        SELECT v.i, 0::bigint AS wh, NULL::bigint AS delivery_id, v.alert_id,
               NULL::bigint AS webhook_id, 'suppressed_' || CASE v.outcome
                   WHEN 'suppressed_duplicate_content' THEN 'duplicate_content'
                   ELSE v.outcome END AS event,
               CASE v.outcome
                   WHEN 'suppressed_duplicate_content'
                       THEN format('same content as alert %s, notified within 24 h', v.other_id)
                   WHEN 'silenced'
                       THEN format('silence %s; notifies when it ends if still firing', v.other_id)
                   ELSE format('inhibited by open alert %s; notifies when it resolves if still'
                               ' firing', v.other_id) END AS detail
        FROM unnest(v_verdicts) v WHERE v.outcome IS NOT NULL
        UNION ALL
        SELECT v.i, 0, NULL, v.alert_id, NULL, 'suppressed_no_route',
               'no active routing rule (fallback included) resolves to an active webhook'
        FROM unnest(v_verdicts) v
        WHERE v.outcome IS NULL AND NOT EXISTS (SELECT 1 FROM unnest(v_pairs) p WHERE p.i = v.i)
        UNION ALL
        SELECT p.i, p.webhook_id, coalesce(p.b0_id, q.id), p.alert_id, p.webhook_id, 'queued',
               p.detail
        FROM unnest(v_pairs) p
        LEFT JOIN unnest(v_q_id, v_q_wh, v_q_aid) q(id, wh, aid)
          ON p.b0_id IS NULL AND q.wh = p.webhook_id AND q.aid = p.alert_id
    ) l ORDER BY l.i, l.wh;

    UPDATE alert_delivery.alerts a SET held_reason = v.outcome, held_by = v.other_id
    FROM unnest(v_verdicts) v
    WHERE a.alert_id = v.alert_id AND v.outcome IN ('silenced', 'inhibited');
    UPDATE alert_delivery.alerts a
    SET last_notified_at = now(), notify_count = a.notify_count + 1,
        escalate_after_s = p.esc, repeat_interval_s = p.rep, updated_at = now()
    FROM (SELECT p.alert_id, min(p.escalate_after_s) AS esc, min(p.repeat_interval_s) AS rep
          FROM unnest(v_pairs) p GROUP BY p.alert_id) p
    WHERE a.alert_id = p.alert_id;

    -- enqueue_trigger's NOTIFY of each alert, in order (equal payloads fold into one).
    PERFORM pg_notify('alert_delivery_queue', n.max_id::text)
    FROM (SELECT p.i, max(coalesce(p.b0_id, q.id)) AS max_id
          FROM unnest(v_pairs) p
          LEFT JOIN unnest(v_q_id, v_q_wh, v_q_aid) q(id, wh, aid)
            ON p.b0_id IS NULL AND q.wh = p.webhook_id AND q.aid = p.alert_id
          GROUP BY p.i ORDER BY p.i OFFSET 0) n;

    RETURN QUERY
    SELECT v.i, v.alert_id,
           coalesce(v.outcome, CASE WHEN EXISTS (SELECT 1 FROM unnest(v_pairs) p WHERE p.i = v.i)
                                    THEN 'notified' ELSE 'unrouted' END)
    FROM unnest(v_verdicts) v ORDER BY v.i;
END $$;

-- Many alerts in order, one result each, all or nothing: the set-based path when the batch
-- allows it, raise_alert(jsonb) per element otherwise (and for the errors it names).
CREATE FUNCTION alert_delivery.raise_alerts(p_alerts jsonb)
RETURNS TABLE (alert_id bigint, outcome text) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_ids bigint[];
    v_outcomes text[];
BEGIN
    IF jsonb_typeof(p_alerts) = 'array' AND jsonb_array_length(p_alerts) > 1 THEN
        BEGIN
            SELECT array_agg(b.alert_id ORDER BY b.i), array_agg(b.outcome ORDER BY b.i)
            INTO v_ids, v_outcomes
            FROM alert_delivery.raise_alert_batch(p_alerts) b;
        EXCEPTION WHEN OTHERS THEN
            v_ids := NULL;
        END;
        IF v_ids IS NOT NULL THEN
            RETURN QUERY SELECT u.id, u.outcome FROM unnest(v_ids, v_outcomes) u(id, outcome);
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
    SELECT r.alert_id, r.outcome
    FROM jsonb_array_elements(p_alerts) WITH ORDINALITY AS e(a, i)
    CROSS JOIN LATERAL alert_delivery.raise_alert(e.a) AS r
    ORDER BY e.i;
END $$;

-- Lifecycle -------------------------------------------------------------------------------------
CREATE FUNCTION alert_delivery.lock_alert(p_alert_id bigint) RETURNS alert_delivery.alerts LANGUAGE plpgsql AS $$
DECLARE
    a alert_delivery.alerts;
BEGIN
    SELECT * INTO a FROM alert_delivery.alerts WHERE alert_delivery.alerts.alert_id = p_alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING MESSAGE = format('alert %s does not exist', p_alert_id),
                              ERRCODE = 'no_data_found', COLUMN = 'alert_id';
    END IF;
    RETURN a;
END $$;

-- Released alerts are the held ones no silence or inhibition covers any more.
CREATE FUNCTION alert_delivery.release_held() RETURNS integer LANGUAGE plpgsql
-- Generic plans: custom plans of the small lookups cost more to plan than to run.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    a alert_delivery.alerts;
    v_by bigint;
    v_n integer := 0;
BEGIN
    FOR a IN SELECT * FROM alert_delivery.alerts WHERE held_reason IS NOT NULL ORDER BY alert_id
             FOR UPDATE SKIP LOCKED LOOP
        IF a.status <> 'firing' THEN
            UPDATE alert_delivery.alerts SET held_reason = NULL, held_by = NULL WHERE alert_id = a.alert_id;
            CONTINUE;
        END IF;
        v_by := alert_delivery.matching_silence(a);
        IF v_by IS NOT NULL THEN
            UPDATE alert_delivery.alerts SET held_reason = 'silenced', held_by = v_by
            WHERE alert_id = a.alert_id AND held_by IS DISTINCT FROM v_by;
            CONTINUE;
        END IF;
        v_by := alert_delivery.inhibiting_alert(a);
        IF v_by IS NOT NULL THEN
            UPDATE alert_delivery.alerts SET held_reason = 'inhibited', held_by = v_by
            WHERE alert_id = a.alert_id AND held_by IS DISTINCT FROM v_by;
            CONTINUE;
        END IF;
        UPDATE alert_delivery.alerts SET held_reason = NULL, held_by = NULL WHERE alert_id = a.alert_id;
        INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
        VALUES (a.alert_id, 'released', format('%s by %s no longer applies', a.held_reason,
                                               a.held_by));
        PERFORM alert_delivery.enqueue_trigger(a.alert_id);
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END $$;

CREATE FUNCTION alert_delivery.acknowledge_alert(p_alert_id bigint, p_by text DEFAULT 'unknown')
RETURNS integer LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    a alert_delivery.alerts := alert_delivery.lock_alert(p_alert_id);
BEGIN
    IF a.status <> 'firing' THEN
        RAISE EXCEPTION USING MESSAGE = format('alert %s is %s, not firing', p_alert_id, a.status),
                              ERRCODE = 'object_not_in_prerequisite_state', COLUMN = 'status';
    END IF;
    UPDATE alert_delivery.alerts SET status = 'acknowledged', acknowledged_at = now(),
                      acknowledged_by = coalesce(nullif(btrim(p_by), ''), 'unknown'),
                      held_reason = NULL, held_by = NULL, updated_at = now()
    WHERE alert_id = p_alert_id;
    INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
    VALUES (p_alert_id, 'acknowledged', 'by ' || coalesce(nullif(btrim(p_by), ''), 'unknown'));
    UPDATE alert_delivery.escalations SET stopped_at = now(), stop_reason = 'acknowledged'
    WHERE alert_id = p_alert_id AND stopped_at IS NULL;
    RETURN alert_delivery.enqueue_followup(p_alert_id, 'acknowledge');
END $$;

CREATE FUNCTION alert_delivery.resolve_alert(p_alert_id bigint, p_by text DEFAULT 'api')
RETURNS integer LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    a alert_delivery.alerts := alert_delivery.lock_alert(p_alert_id);
    v_n integer;
BEGIN
    IF a.status = 'resolved' THEN
        RAISE EXCEPTION USING MESSAGE = format('alert %s is already resolved', p_alert_id),
                              ERRCODE = 'object_not_in_prerequisite_state', COLUMN = 'status';
    END IF;
    UPDATE alert_delivery.alerts SET status = 'resolved', resolved_at = now(), held_reason = NULL,
                      held_by = NULL, updated_at = now()
    WHERE alert_id = p_alert_id;
    INSERT INTO alert_delivery.delivery_log (alert_id, event, detail)
    VALUES (p_alert_id, 'resolved', 'by ' || coalesce(nullif(btrim(p_by), ''), 'api'));
    UPDATE alert_delivery.escalations SET stopped_at = now(), stop_reason = 'resolved'
    WHERE alert_id = p_alert_id AND stopped_at IS NULL;
    v_n := alert_delivery.enqueue_followup(p_alert_id, 'resolve');
    -- Alerts this one inhibited may notify now.
    PERFORM alert_delivery.release_held();
    RETURN v_n;
END $$;

-- Views -------------------------------------------------------------------------------------------
CREATE VIEW alert_suppressions AS
SELECT l.log_id, l.created_at, l.alert_id, substr(l.event, 12) AS reason, l.detail,
       a.operation_type, a.alert_type, a.severity, a.title
FROM alert_delivery.delivery_log l LEFT JOIN alert_delivery.alerts a ON a.alert_id = l.alert_id
WHERE l.event LIKE 'suppressed\_%';

CREATE VIEW open_alerts AS
SELECT alert_id, severity, operation_type, alert_type, title, status, held_reason, occurrences,
       created_at, last_notified_at, acknowledged_by, escalate_after_s
FROM alert_delivery.alerts WHERE status IN ('firing', 'acknowledged');
