-- Small shared helpers: errors naming a field, UTC timestamps, safe links, fingerprints and
-- matchers. Single-expression SQL functions, so the planner inlines them into their callers.

CREATE OR REPLACE FUNCTION alert_delivery.invalid_alert(p_field text, p_message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = format('raise_alert: %s %s', p_field, p_message),
                          ERRCODE = 'invalid_parameter_value', COLUMN = left(p_field, 63);
END $$;

CREATE OR REPLACE FUNCTION alert_delivery.utc_iso(p timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

CREATE OR REPLACE FUNCTION alert_delivery.safe_url(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN char_length(p) <= 2000
                 AND p ~ '^https://[A-Za-z0-9._~:/?#@!$&''()*+,;=%-]+$' THEN p END
$$;

-- sha256 of the sorted label set: name \x1f value, pairs joined by \x1e, names in code point
-- order (alert_delivery.alerting.labels.fingerprint computes the same).
CREATE OR REPLACE FUNCTION alert_delivery.labels_fingerprint(p_labels jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(coalesce(
               string_agg(l.key || chr(31) || l.value, chr(30) ORDER BY l.key COLLATE "C"), ''),
               'UTF8')), 'hex')
    FROM jsonb_each_text(p_labels) l
$$;

-- Dedup layer 2: the same labels but `source`, the same title and description -- the same
-- alert reported by two producers. (Any other label counts: one rule firing for many
-- instances with one summary is many alerts, never content duplicates.)
CREATE OR REPLACE FUNCTION alert_delivery.alert_content_hash(p_labels jsonb, p_title text,
                                                             p_description text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(concat_ws(chr(31),
               alert_delivery.labels_fingerprint(p_labels - 'source'), p_title, p_description),
               'UTF8')), 'hex')
$$;

-- Alertmanager's matchers on a label set: [[name, op, value], ...], all must hold; a missing
-- label is the empty string; regular expressions are anchored at both ends. Python refuses the
-- constructs PostgreSQL and Python read differently before a matcher is stored
-- (alert_delivery.alerting.matchers).
CREATE OR REPLACE FUNCTION alert_delivery.labels_match(p_labels jsonb, p_matchers jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements(p_matchers) m
        WHERE NOT CASE m ->> 1
            WHEN '=' THEN coalesce(p_labels ->> (m ->> 0), '') = (m ->> 2)
            WHEN '!=' THEN coalesce(p_labels ->> (m ->> 0), '') <> (m ->> 2)
            WHEN '=~' THEN coalesce(p_labels ->> (m ->> 0), '') ~ ('^(?:' || (m ->> 2) || ')$')
            WHEN '!~' THEN coalesce(p_labels ->> (m ->> 0), '') !~ ('^(?:' || (m ->> 2) || ')$')
        END)
$$;

-- The equality matchers with a non-empty value as one object: `labels @> this` narrows a search
-- through the GIN index alerts_labels before labels_match decides.
CREATE OR REPLACE FUNCTION alert_delivery.matchers_equalities(p_matchers jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(m ->> 0, m ->> 2), '{}')
    FROM jsonb_array_elements(p_matchers) m
    WHERE m ->> 1 = '=' AND m ->> 2 <> ''
$$;

-- The values of the group_by labels, the rest of an alert's batch key.
CREATE OR REPLACE FUNCTION alert_delivery.group_values(p_labels jsonb, p_group_by text[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(coalesce(p_labels ->> g, ''), chr(31) ORDER BY i), '')
    FROM unnest(p_group_by) WITH ORDINALITY AS u(g, i)
$$;
