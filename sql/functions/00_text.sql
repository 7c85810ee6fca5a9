-- Small shared helpers: errors naming a field, UTC timestamps, safe links, fingerprints and
-- matchers. A SQL function whose body is one expression without a subquery is inlined into its
-- callers; one with a FROM or a subquery is not, and then starts an executor on every call
-- (9 us on PostgreSQL 18), so the per-row helpers over jsonb are PL/pgSQL loops of simple
-- expressions instead (2 us).

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

-- Both hashes of an alert from one pass over its labels (one executor start instead of three:
-- a tenth of normalising an alert); labels_fingerprint and alert_content_hash below read theirs
-- from it, so the formulas live here only.
CREATE OR REPLACE FUNCTION alert_delivery.alert_hashes(p_labels jsonb, p_title text,
                                                       p_description text)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object(
        'fingerprint', encode(sha256(convert_to(coalesce(
            string_agg(l.key || chr(31) || l.value, chr(30) ORDER BY l.key COLLATE "C"), ''),
            'UTF8')), 'hex'),
        'content_hash', encode(sha256(convert_to(concat_ws(chr(31),
            encode(sha256(convert_to(coalesce(
                string_agg(l.key || chr(31) || l.value, chr(30) ORDER BY l.key COLLATE "C")
                    FILTER (WHERE l.key <> 'source'), ''), 'UTF8')), 'hex'),
            p_title, p_description), 'UTF8')), 'hex'))
    FROM jsonb_each_text(p_labels) l
$$;

-- sha256 of the sorted label set: name \x1f value, pairs joined by \x1e, names in code point
-- order (alert_delivery.alerting.labels.fingerprint computes the same).
CREATE OR REPLACE FUNCTION alert_delivery.labels_fingerprint(p_labels jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT alert_delivery.alert_hashes(p_labels, '', '') ->> 'fingerprint'
$$;

-- Dedup layer 2: the same labels but `source`, the same title and description -- the same
-- alert reported by two producers. (Any other label counts: one rule firing for many
-- instances with one summary is many alerts, never content duplicates.)
CREATE OR REPLACE FUNCTION alert_delivery.alert_content_hash(p_labels jsonb, p_title text,
                                                             p_description text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT alert_delivery.alert_hashes(p_labels, p_title, p_description) ->> 'content_hash'
$$;

-- Alertmanager's matchers on a label set: [[name, op, value], ...], all must hold; a missing
-- label is the empty string; regular expressions are anchored at both ends. Python refuses the
-- constructs PostgreSQL and Python read differently before a matcher is stored
-- (alert_delivery.alerting.matchers).
CREATE OR REPLACE FUNCTION alert_delivery.labels_match(p_labels jsonb, p_matchers jsonb)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    m jsonb;
    v text;
BEGIN
    FOR i IN 0 .. coalesce(jsonb_array_length(p_matchers), 0) - 1 LOOP
        m := p_matchers -> i;
        v := coalesce(p_labels ->> (m ->> 0), '');
        IF NOT (CASE m ->> 1
                    WHEN '=' THEN v = (m ->> 2)
                    WHEN '!=' THEN v <> (m ->> 2)
                    WHEN '=~' THEN v ~ ('^(?:' || (m ->> 2) || ')$')
                    WHEN '!~' THEN v !~ ('^(?:' || (m ->> 2) || ')$') END) THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END $$;

-- The equality matchers with a non-empty value as one object: `labels @> this` narrows a search
-- through the GIN index alerts_labels before labels_match decides.
CREATE OR REPLACE FUNCTION alert_delivery.matchers_equalities(p_matchers jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    m jsonb;
    v_eq jsonb := '{}';
BEGIN
    FOR i IN 0 .. coalesce(jsonb_array_length(p_matchers), 0) - 1 LOOP
        m := p_matchers -> i;
        IF m ->> 1 = '=' AND m ->> 2 <> '' THEN
            v_eq := v_eq || jsonb_build_object(m ->> 0, m ->> 2);
        END IF;
    END LOOP;
    RETURN v_eq;
END $$;

-- The values of the group_by labels, the rest of an alert's batch key.
CREATE OR REPLACE FUNCTION alert_delivery.group_values(p_labels jsonb, p_group_by text[])
RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_values text[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_group_by), 0) LOOP
        v_values := v_values || coalesce(p_labels ->> p_group_by[i], '');
    END LOOP;
    RETURN array_to_string(v_values, chr(31));
END $$;
