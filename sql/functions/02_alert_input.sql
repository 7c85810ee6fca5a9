-- The producer's alert document, checked and normalised. Two spellings are accepted:
--   labels form:  {"labels": {...}, "annotations": {...}, "starts_at", "ends_at", ...}
--   legacy form:  {"source", "operation_type", "alert_type", "severity", "title",
--                  "description", ...} (the well-known labels and annotations as fields)
-- and may be mixed as long as they agree. Seed 002's channel flags (notify_email,
-- notify_inapp, channels) become extra target kinds. Errors name the field (SQLSTATE 22023,
-- COLUMN set), prefixed with p_at ("alerts[3]." in a batch).

CREATE OR REPLACE FUNCTION alert_delivery.alert_text(p_at text, p_field text, p_value jsonb,
                                                     p_max integer, p_required boolean)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        IF p_required THEN
            PERFORM alert_delivery.invalid_alert(p_at || p_field,
                                                 'is required and must not be empty');
        END IF;
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'string' THEN
        PERFORM alert_delivery.invalid_alert(p_at || p_field, 'must be a string');
    END IF;
    IF p_required AND btrim(p_value #>> '{}') = '' THEN
        PERFORM alert_delivery.invalid_alert(p_at || p_field, 'is required and must not be empty');
    END IF;
    IF char_length(p_value #>> '{}') > p_max THEN
        PERFORM alert_delivery.invalid_alert(p_at || p_field,
                                             format('is longer than %s characters', p_max));
    END IF;
    RETURN p_value #>> '{}';
END $$;

CREATE OR REPLACE FUNCTION alert_delivery.alert_time(p_at text, p_field text, p_value jsonb)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'string' THEN
        PERFORM alert_delivery.invalid_alert(p_at || p_field, 'must be an ISO 8601 time string');
    END IF;
    BEGIN
        RETURN (p_value #>> '{}')::timestamptz;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow
                   OR invalid_time_zone_displacement_value OR invalid_parameter_value THEN
        PERFORM alert_delivery.invalid_alert(p_at || p_field,
            format('is not a time: %s', left(p_value #>> '{}', 60)));
    END;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION alert_delivery.alert_id_field(p_at text, p_field text, p_value jsonb)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'number' OR (p_value #>> '{}')::numeric % 1 <> 0
       OR (p_value #>> '{}')::numeric NOT BETWEEN 1 AND 9223372036854775807 THEN
        PERFORM alert_delivery.invalid_alert(p_at || p_field,
            format('must be a positive whole number, not %s', left(p_value::text, 40)));
    END IF;
    RETURN (p_value #>> '{}')::bigint;
END $$;

-- The title: the title or summary annotation, else the alert's name, trimmed; with none, one
-- from the fingerprint.
CREATE OR REPLACE FUNCTION alert_delivery.alert_title(p_labels jsonb, p_notes jsonb)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(nullif(left(btrim(coalesce(p_notes ->> 'title', p_notes ->> 'summary',
                                               p_labels ->> 'alertname',
                                               p_labels ->> 'alert_type', '')), 10000), ''),
                    'alert ' || left(alert_delivery.labels_fingerprint(p_labels), 12))
$$;

-- The normalised document: labels and annotations decided, the rest taken from the input.
CREATE OR REPLACE FUNCTION alert_delivery.alert_output(a jsonb, p_at text, p_labels jsonb,
                                                       p_notes jsonb, p_severity text,
                                                       p_title text, p_description text,
                                                       p_kinds text[])
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT alert_delivery.alert_hashes(p_labels, p_title, p_description) || jsonb_build_object(
        'labels', p_labels, 'annotations', p_notes,
        'source', coalesce(p_labels ->> 'source', 'api'),
        'operation_type', coalesce(p_labels ->> 'operation_type', ''),
        'alert_type', coalesce(p_labels ->> 'alert_type', p_labels ->> 'alertname', ''),
        'severity', p_severity, 'title', p_title, 'description', p_description,
        'details', coalesce(nullif(a -> 'details', 'null'), '{}'),
        'partition_start', CASE WHEN a ? 'partition_start' THEN
            alert_delivery.alert_time(p_at, 'partition_start', a -> 'partition_start') END,
        'starts_at', CASE WHEN a ? 'starts_at' THEN
            alert_delivery.alert_time(p_at, 'starts_at', a -> 'starts_at') END,
        'ends_at', CASE WHEN a ? 'ends_at' THEN
            alert_delivery.alert_time(p_at, 'ends_at', a -> 'ends_at') END,
        'anomaly_id', CASE WHEN a ? 'anomaly_id' THEN
            alert_delivery.alert_id_field(p_at, 'anomaly_id', a -> 'anomaly_id') END,
        'correlation_id', CASE WHEN a ? 'correlation_id' THEN
            alert_delivery.alert_id_field(p_at, 'correlation_id', a -> 'correlation_id') END,
        'generator_url', CASE WHEN a ? 'generator_url' THEN
            alert_delivery.alert_text(p_at, 'generator_url', a -> 'generator_url', 2000,
                                      false) END,
        'extra_kinds', to_jsonb(p_kinds))
$$;

-- Every document, checked field by field: the loops that name the offending field run only once
-- a cheap check has failed. alert_input below takes the common documents a shorter way and
-- hands every other one to this function (a property test holds the two equal).
CREATE OR REPLACE FUNCTION alert_delivery.alert_input_checked(a jsonb, p_at text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_labels jsonb;
    v_notes jsonb;
    v_legacy boolean;
    k text;
    v text;
    v_max integer;
    v_required boolean;
    v_kinds text[] := '{}';
    v_sev text;
    v_title text;
    v_desc text;
BEGIN
    IF a IS NULL OR jsonb_typeof(a) <> 'object' THEN
        PERFORM alert_delivery.invalid_alert(coalesce(nullif(rtrim(p_at, '.'), ''), 'alert'),
                                             'must be a JSON object');
    END IF;
    IF a - ARRAY['labels', 'annotations', 'source', 'operation_type', 'alert_type', 'severity',
                 'title', 'description', 'details', 'partition_start', 'anomaly_id',
                 'correlation_id', 'starts_at', 'ends_at', 'generator_url', 'notify_email',
                 'notify_inapp', 'channels'] <> '{}' THEN
        k := (SELECT min(key) FROM jsonb_object_keys(a - ARRAY[
                  'labels', 'annotations', 'source', 'operation_type', 'alert_type', 'severity',
                  'title', 'description', 'details', 'partition_start', 'anomaly_id',
                  'correlation_id', 'starts_at', 'ends_at', 'generator_url', 'notify_email',
                  'notify_inapp', 'channels']) key);
        PERFORM alert_delivery.invalid_alert(p_at || left(k, 60), 'is not a known field');
    END IF;
    v_legacy := NOT a ? 'labels';
    v_labels := coalesce(a -> 'labels', '{}');
    v_notes := coalesce(a -> 'annotations', '{}');
    IF jsonb_typeof(v_labels) <> 'object' THEN
        PERFORM alert_delivery.invalid_alert(p_at || 'labels', 'must be an object');
    END IF;
    IF jsonb_typeof(v_notes) <> 'object' THEN
        PERFORM alert_delivery.invalid_alert(p_at || 'annotations', 'must be an object');
    END IF;

    -- The legacy fields are shorthands for well-known labels and annotations; given twice they
    -- must agree.
    FOREACH k IN ARRAY ARRAY['source', 'operation_type', 'alert_type', 'severity', 'title',
                             'description'] LOOP
        v_max := CASE k WHEN 'severity' THEN 20 WHEN 'title' THEN 10000
                        WHEN 'description' THEN 1000000 ELSE 200 END;
        v_required := v_legacy AND k IN ('operation_type', 'alert_type', 'severity', 'title');
        IF jsonb_typeof(a -> k) = 'string' AND char_length(a ->> k) <= v_max
           AND NOT (v_required AND btrim(a ->> k) = '') THEN
            v := a ->> k;
        ELSIF (a -> k IS NULL OR jsonb_typeof(a -> k) = 'null') AND NOT v_required THEN
            v := NULL;
        ELSE
            -- Raises, naming the field and what is wrong with it.
            v := alert_delivery.alert_text(p_at, k, a -> k, v_max, v_required);
        END IF;
        IF v IS NULL AND v_legacy AND k = 'source' THEN
            v := 'api';
        END IF;
        CONTINUE WHEN v IS NULL;
        IF k IN ('title', 'description') THEN
            IF k = 'title' THEN
                v := btrim(v);
            END IF;
            IF v_notes ? k AND v_notes ->> k IS DISTINCT FROM v THEN
                PERFORM alert_delivery.invalid_alert(p_at || 'annotations.' || k,
                                                     format('disagrees with %s', k));
            END IF;
            IF v <> '' THEN
                v_notes := v_notes || jsonb_build_object(k, v);
            END IF;
            CONTINUE;
        END IF;
        v := btrim(v);
        IF k = 'severity' THEN
            v := upper(v);
        END IF;
        IF v_labels ? k AND v_labels ->> k IS DISTINCT FROM v THEN
            PERFORM alert_delivery.invalid_alert(p_at || 'labels.' || k,
                format('is %s but %s says %s', left(v_labels ->> k, 40), k, left(v, 40)));
        END IF;
        v_labels := v_labels || jsonb_build_object(k, v);
    END LOOP;

    -- Labels: the identity. Names are identifiers, values strings of at most 1 KiB, 64 at most.
    IF v_labels = '{}' THEN
        PERFORM alert_delivery.invalid_alert(p_at || 'labels', 'needs at least one label');
    END IF;
    IF octet_length(v_labels::text) > 512
       AND (SELECT count(*) FROM jsonb_object_keys(v_labels)) > 64 THEN
        PERFORM alert_delivery.invalid_alert(p_at || 'labels', 'has more than 64 labels');
    END IF;
    IF jsonb_path_exists(v_labels, '$.keyvalue() ? (!(@.key like_regex "^[a-zA-Z_][a-zA-Z0-9_]*$")
                                                    || @.value.type() != "string")')
       OR octet_length(v_labels::text) > 1024 THEN
        FOR k, v IN SELECT e.key, jsonb_typeof(e.value) FROM jsonb_each(v_labels) e LOOP
            IF k !~ '^[a-zA-Z_][a-zA-Z0-9_]*$' THEN
                PERFORM alert_delivery.invalid_alert(p_at || 'labels',
                    format('invalid label name %s (must match [a-zA-Z_][a-zA-Z0-9_]*)',
                           quote_literal(left(k, 60))));
            END IF;
            IF v <> 'string' THEN
                PERFORM alert_delivery.invalid_alert(p_at || 'labels.' || k, 'must be a string');
            END IF;
            IF octet_length(v_labels ->> k) > 1024 THEN
                PERFORM alert_delivery.invalid_alert(p_at || 'labels.' || k,
                                                     'is longer than 1024 bytes');
            END IF;
        END LOOP;
    END IF;
    IF jsonb_path_exists(v_notes, '$.* ? (@.type() != "string")')
       OR octet_length(v_notes::text) > 1000000 THEN
        FOR k, v IN SELECT e.key, jsonb_typeof(e.value) FROM jsonb_each(v_notes) e LOOP
            IF v <> 'string' THEN
                PERFORM alert_delivery.invalid_alert(p_at || 'annotations.' || left(k, 60),
                                                     'must be a string');
            END IF;
            IF char_length(v_notes ->> k) > 1000000 THEN
                PERFORM alert_delivery.invalid_alert(p_at || 'annotations.' || left(k, 60),
                                                     'is longer than 1000000 characters');
            END IF;
        END LOOP;
    END IF;

    -- One severity vocabulary for rules and columns: Prometheus's "critical" is CRITICAL.
    IF upper(v_labels ->> 'severity') IN ('INFO', 'WARNING', 'CRITICAL') THEN
        v_labels := v_labels || jsonb_build_object('severity', upper(v_labels ->> 'severity'));
    END IF;
    v_sev := coalesce(upper(v_labels ->> 'severity'), 'WARNING');
    IF v_sev NOT IN ('INFO', 'WARNING', 'CRITICAL') THEN
        PERFORM alert_delivery.invalid_alert(p_at || CASE WHEN v_legacy THEN 'severity'
                                                          ELSE 'labels.severity' END,
            format('must be INFO, WARNING or CRITICAL, not %s', left(v_labels ->> 'severity', 40)));
    END IF;
    v_title := alert_delivery.alert_title(v_labels, v_notes);
    v_desc := coalesce(v_notes ->> 'description', '');

    IF a ? 'details' AND jsonb_typeof(a -> 'details') NOT IN ('object', 'null') THEN
        PERFORM alert_delivery.invalid_alert(p_at || 'details', 'must be a JSON object');
    END IF;
    IF a ?| ARRAY['notify_email', 'notify_inapp', 'channels'] THEN
        FOREACH k IN ARRAY ARRAY['notify_email', 'notify_inapp'] LOOP
            IF a ? k AND jsonb_typeof(a -> k) NOT IN ('boolean', 'null') THEN
                PERFORM alert_delivery.invalid_alert(p_at || k, 'must be true or false');
            END IF;
        END LOOP;
        IF (a ->> 'notify_email')::boolean THEN
            v_kinds := v_kinds || 'email'::text;
        END IF;
        IF (a ->> 'notify_inapp')::boolean THEN
            v_kinds := v_kinds || 'inbox'::text;
        END IF;
        IF a ? 'channels' AND jsonb_typeof(a -> 'channels') <> 'null' THEN
            IF jsonb_typeof(a -> 'channels') <> 'array' THEN
                PERFORM alert_delivery.invalid_alert(p_at || 'channels',
                                                     'must be a list of kinds');
            END IF;
            FOR v IN SELECT e #>> '{}' FROM jsonb_array_elements(a -> 'channels') e LOOP
                v := lower(btrim(v));
                v := CASE v WHEN 'in_app' THEN 'inbox' WHEN 'inapp' THEN 'inbox' ELSE v END;
                IF v IS NULL OR v NOT IN ('slack', 'mattermost', 'pagerduty', 'email', 'webhook',
                                          'inbox') THEN
                    PERFORM alert_delivery.invalid_alert(p_at || 'channels',
                        format('unknown kind %s', quote_literal(left(coalesce(v, 'null'), 40))));
                END IF;
                v_kinds := v_kinds || v;
            END LOOP;
            v_kinds := ARRAY(SELECT DISTINCT u FROM unnest(v_kinds) u ORDER BY u);
        END IF;
    END IF;

    RETURN alert_delivery.alert_output(a, p_at, v_labels, v_notes, v_sev, v_title, v_desc,
                                       v_kinds);
END $$;

-- The producer's document. The two plain shapes producers send -- the legacy fields alone, or
-- labels and annotations alone, no channel flags -- are checked by one expression each and
-- normalised in a few (PL/pgSQL's per-statement cost made the general loop 80 us an alert, half
-- of raising a batch); everything else, errors included, goes through alert_input_checked.
CREATE OR REPLACE FUNCTION alert_delivery.alert_input(a jsonb, p_at text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_labels jsonb;
    v_notes jsonb;
    v_title text;
    v_desc text;
BEGIN
    IF jsonb_typeof(a) = 'object' AND NOT a ? 'labels' AND NOT a ? 'annotations'
       AND a - ARRAY['source', 'operation_type', 'alert_type', 'severity', 'title', 'description',
                     'details', 'partition_start', 'anomaly_id', 'correlation_id', 'starts_at',
                     'ends_at', 'generator_url'] = '{}'
       AND jsonb_typeof(a -> 'operation_type') = 'string'
       AND jsonb_typeof(a -> 'alert_type') = 'string'
       AND jsonb_typeof(a -> 'severity') = 'string' AND jsonb_typeof(a -> 'title') = 'string'
       AND coalesce(jsonb_typeof(a -> 'source'), 'null') IN ('string', 'null')
       AND coalesce(jsonb_typeof(a -> 'description'), 'null') IN ('string', 'null')
       AND coalesce(jsonb_typeof(a -> 'details'), 'null') IN ('object', 'null')
       AND char_length(a ->> 'operation_type') <= 200 AND btrim(a ->> 'operation_type') <> ''
       AND char_length(a ->> 'alert_type') <= 200 AND btrim(a ->> 'alert_type') <> ''
       AND char_length(a ->> 'severity') <= 20
       AND upper(btrim(a ->> 'severity')) IN ('INFO', 'WARNING', 'CRITICAL')
       AND char_length(a ->> 'title') <= 10000 AND btrim(a ->> 'title') <> ''
       AND coalesce(char_length(a ->> 'source'), 0) <= 200
       AND coalesce(char_length(a ->> 'description'), 0) <= 1000000 THEN
        v_title := btrim(a ->> 'title');
        v_desc := coalesce(a ->> 'description', '');
        -- Variables, not expressions, as arguments: alert_output is then inlined.
        v_labels := jsonb_build_object('source', btrim(coalesce(a ->> 'source', 'api')),
                                       'operation_type', btrim(a ->> 'operation_type'),
                                       'alert_type', btrim(a ->> 'alert_type'),
                                       'severity', upper(btrim(a ->> 'severity')));
        v_notes := CASE WHEN v_desc = '' THEN jsonb_build_object('title', v_title)
                        ELSE jsonb_build_object('title', v_title, 'description', v_desc) END;
        RETURN alert_delivery.alert_output(a, p_at, v_labels, v_notes, v_labels ->> 'severity',
                                           v_title, v_desc, '{}');
    END IF;
    -- Labels alone: at most 512 bytes of them cannot hold more than 64 labels or a value over
    -- 1 KiB.
    IF jsonb_typeof(a) = 'object' AND jsonb_typeof(a -> 'labels') = 'object'
       AND a - ARRAY['labels', 'annotations', 'details', 'partition_start', 'anomaly_id',
                     'correlation_id', 'starts_at', 'ends_at', 'generator_url'] = '{}'
       AND a -> 'labels' <> '{}' AND octet_length((a -> 'labels')::text) <= 512
       AND NOT jsonb_path_exists(a -> 'labels', '$.keyvalue() ? (
               !(@.key like_regex "^[a-zA-Z_][a-zA-Z0-9_]*$") || @.value.type() != "string")')
       AND coalesce(upper(a -> 'labels' ->> 'severity'), 'WARNING')
           IN ('INFO', 'WARNING', 'CRITICAL')
       AND coalesce(jsonb_typeof(a -> 'annotations'), 'object') = 'object'
       AND NOT jsonb_path_exists(coalesce(a -> 'annotations', '{}'),
                                 '$.* ? (@.type() != "string")')
       AND octet_length(coalesce(a -> 'annotations', '{}')::text) <= 1000000
       AND coalesce(jsonb_typeof(a -> 'details'), 'null') IN ('object', 'null') THEN
        v_labels := a -> 'labels';
        IF v_labels ? 'severity' THEN
            v_labels := v_labels || jsonb_build_object('severity', upper(v_labels ->> 'severity'));
        END IF;
        v_notes := coalesce(a -> 'annotations', '{}');
        v_title := alert_delivery.alert_title(v_labels, v_notes);
        v_desc := coalesce(v_notes ->> 'description', '');
        RETURN alert_delivery.alert_output(a, p_at, v_labels, v_notes,
                                           coalesce(v_labels ->> 'severity', 'WARNING'), v_title,
                                           v_desc, '{}');
    END IF;
    RETURN alert_delivery.alert_input_checked(a, p_at);
END $$;
