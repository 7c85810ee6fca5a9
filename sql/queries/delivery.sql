-- Delivery engine queries. For in_flight rows next_attempt_at holds the lease end, so the one
-- partial index delivery_queue_due serves new work, retries and expired leases alike.

-- name: claim
-- Claim due rows (new work, retries, expired leases) and, in the same statement, ask each
-- webhook's breaker, 429 throttle and token bucket (shared by every process through
-- webhook_health) how many of its rows may be sent now; the engine defers the rest. Health rows
-- are locked in webhook_id order, as record_health does, so two claimers never deadlock.
WITH cfg AS (
    -- A claim lost in a server crash only leaves its rows due again, so its commit need not wait
    -- for the WAL flush; outcomes (record) stay synchronous.
    SELECT set_config('synchronous_commit', 'off', true) AS sync
), due AS (
    SELECT q.delivery_id
    FROM alert_delivery.delivery_queue q, cfg
    WHERE q.status IN ('pending', 'in_flight')
      AND q.next_attempt_at <= now() - make_interval(secs => %(min_age_s)s)
      -- Set only while a failed claim looks for the webhook that made it fail.
      AND (%(only)s::bigint IS NULL OR q.webhook_id = %(only)s::bigint)
    ORDER BY q.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF q SKIP LOCKED
), claimed AS (
    UPDATE alert_delivery.delivery_queue q
    SET status = 'in_flight',
        leased_until = now() + make_interval(secs => %(lease_s)s),
        next_attempt_at = now() + make_interval(secs => %(lease_s)s),
        leased_by = %(worker_id)s,
        -- Given back by an outcome that sent nothing: what stays counted may have been sent.
        attempts_started = q.attempts_started + 1,
        updated_at = now()
    -- = ANY(ARRAY(...)) keeps this a primary-key lookup however large the queue grows.
    WHERE q.delivery_id = ANY (ARRAY(SELECT delivery_id FROM due))
    RETURNING q.delivery_id, q.message_id, q.alert_id, q.webhook_id, q.event, q.payload,
              q.attempts, q.alert_ids, q.body
), hooks AS (
    -- The claim's webhooks, each once, with its first row: the webhook's columns are joined and
    -- sent once per webhook rather than carried (and sorted) with every row.
    SELECT w.webhook_id, w.kind, w.name, w.url_encrypted, w.url_redacted, w.secret_encrypted,
           w.config, w.rate_limit_per_s, w.retry_schedule_s, w.active, w.disabled_reason,
           c.first_id, c.wanted
    FROM (SELECT webhook_id, min(delivery_id) AS first_id, count(*)::int AS wanted
          FROM claimed GROUP BY webhook_id) c
    JOIN alert_delivery.webhooks w USING (webhook_id)
), req AS (
    -- Inactive (disabled or paused) webhooks ask for no permit: a paused webhook's own
    -- configuration is what may have made claims fail.
    SELECT webhook_id, wanted, rate_limit_per_s AS rate FROM hooks WHERE active
), cur AS (
    SELECT h.webhook_id, r.wanted, r.rate, h.breaker_state, h.breaker_opened_at,
           h.probe_leased_until, h.throttled_until, h.consecutive_failures, h.bucket_empty,
           -- Between -rate and rate, whatever a corrupt tokens / tokens_at holds (NaN counts as
           -- full: PostgreSQL orders it above every number), so a bucket always recovers.
           least(r.rate, greatest(-r.rate, coalesce(h.tokens, r.rate)
                 + r.rate * extract(epoch FROM now() - coalesce(h.tokens_at, now())))) AS avail,
           coalesce(h.throttled_until > now(), false) AS throttled,
           (h.breaker_state = 'open'
                AND h.breaker_opened_at <= now() - make_interval(secs => %(cooldown_s)s))
           OR (h.breaker_state = 'half_open'
                AND coalesce(h.probe_leased_until, '-infinity') < now()) AS probe_ok
    FROM alert_delivery.webhook_health h
    JOIN req r USING (webhook_id)
    ORDER BY h.webhook_id
    FOR UPDATE OF h
), grant_ AS (
    -- Clamped before the cast: whatever the bucket holds (even +-Infinity or NaN, which a
    -- corrupt tokens_at can produce), the cast sees a number between 0 and `wanted`.
    SELECT cur.*,
           CASE WHEN throttled THEN 0
                WHEN breaker_state = 'closed'
                    THEN greatest(0, least(wanted, floor(avail)))::int
                WHEN probe_ok THEN greatest(0, least(1, floor(avail)))::int
                ELSE 0 END AS granted
    FROM cur
), permit AS (
    UPDATE alert_delivery.webhook_health h
    SET tokens = g.avail - g.granted,
        tokens_at = now(),
        breaker_state = CASE WHEN NOT g.throttled AND g.probe_ok AND g.granted > 0
                             THEN 'half_open' ELSE h.breaker_state END,
        probe_leased_until = CASE WHEN NOT g.throttled AND g.probe_ok AND g.granted > 0
                                  THEN now() + make_interval(secs => %(lease_s)s)
                                  ELSE h.probe_leased_until END,
        bucket_empty = CASE WHEN g.throttled OR g.breaker_state <> 'closed' THEN h.bucket_empty
                            ELSE g.granted < g.wanted END,
        updated_at = now()
    FROM grant_ g
    WHERE h.webhook_id = g.webhook_id
    RETURNING h.webhook_id, g.granted, g.rate,
        NOT g.throttled AND g.probe_ok AND g.granted > 0 AS probe,
        h.breaker_state, g.consecutive_failures,
        h.bucket_empty AND NOT g.bucket_empty AS emptied,
        -- At most a day, and never NaN: what it defers must come back.
        least(86400.0, coalesce(nullif(CASE WHEN g.throttled
                 THEN greatest(0.0, extract(epoch FROM g.throttled_until - now()))::float8
             WHEN g.breaker_state = 'closed' OR g.probe_ok
                 THEN greatest(0.0, (1.0 - (g.avail - g.granted)) / g.rate)
             WHEN g.breaker_state = 'open'
                 THEN greatest(0.0, extract(epoch FROM g.breaker_opened_at
                                    + make_interval(secs => %(cooldown_s)s) - now()))::float8
             -- Half-open, its probe on the wire: back after at most a cooldown (a probe that
             -- closes the breaker also brings them forward, see record_health).
             ELSE least(%(cooldown_s)s,
                        greatest(0.0, extract(epoch FROM g.probe_leased_until - now())))::float8
        END, 'NaN'), 86400.0)) AS wait_s
), emptied AS (
    -- One log row when a webhook's bucket first empties, not one per deferred delivery.
    INSERT INTO alert_delivery.delivery_log (webhook_id, event, detail, worker_id)
    SELECT webhook_id, 'rate_limited',
           format('token bucket empty at %%s/s; deferrals are counted in webhook_health', rate),
           %(worker_id)s
    FROM permit WHERE emptied
), msgs AS (
    -- The alert messages of the claim's new rows, each alert once, for the whole claim; the
    -- engine picks each row's by its alert_ids. Built inline as json (not jsonb, which parses
    -- and re-sorts every object: about half the cost), with the keys and values of
    -- alert_delivery.alert_message (sql/functions/08_messages.sql); a test holds the two equal.
    SELECT (SELECT min(delivery_id) FROM claimed) AS first_id,
           json_agg(json_build_object(
               'id', a.alert_id, 'fingerprint', a.fingerprint, 'labels', a.labels,
               'annotations', a.annotations, 'source', a.source,
               'operation_type', a.operation_type, 'alert_type', a.alert_type,
               'severity', a.severity, 'status', a.status, 'title', a.title,
               'description', a.description, 'details', a.payload,
               'runbook_url', alert_delivery.safe_url(a.annotations ->> 'runbook_url'),
               'generator_url', alert_delivery.safe_url(a.generator_url),
               'occurrences', a.occurrences, 'created_at', alert_delivery.utc_iso(a.created_at),
               'starts_at', alert_delivery.utc_iso(coalesce(a.starts_at, a.created_at)),
               'acknowledged_by', a.acknowledged_by, 'event_detail', NULL)) AS messages
    FROM alert_delivery.alerts a
    WHERE a.alert_id = ANY (ARRAY(
        SELECT DISTINCT u.id
        FROM claimed c CROSS JOIN LATERAL unnest(c.alert_ids) AS u(id)
        WHERE c.body IS NULL AND c.payload = '{}'))
)
-- The webhook's own columns (name through failures) come only on its first row of the claim,
-- NULL on the others (store.claim copies them over): the encrypted URL and secret were most of
-- the bytes the client decoded per row.
-- Three kinds of row: rendered (body set: sent as stored), new (body NULL, payload '{}': the
-- engine renders its alert messages; the body is stored with the row's first outcome) and legacy
-- (body NULL, a payload enqueued before bodies were rendered in Python: sent from the payload).
SELECT c.delivery_id, c.message_id::text, c.alert_id, c.webhook_id, c.event,
       -- A legacy payload is decoded only where the engine reads it (email, inbox, PagerDuty's
       -- routing key); the other kinds get it as text, which is the body sent and signed.
       CASE WHEN c.body IS NULL AND h.kind IN ('email', 'inbox', 'pagerduty')
                 AND c.payload <> '{}' THEN c.payload END AS payload,
       c.attempts, h.kind,
       CASE WHEN f.first THEN h.name END AS name,
       CASE WHEN f.first THEN h.url_encrypted END AS url_encrypted,
       CASE WHEN f.first THEN h.url_redacted END AS url_redacted,
       CASE WHEN f.first THEN h.secret_encrypted END AS secret_encrypted,
       -- Only email and inbox deliveries read the config: the others skip decoding it.
       CASE WHEN f.first AND h.kind IN ('email', 'inbox') THEN h.config END AS config,
       CASE WHEN f.first THEN h.rate_limit_per_s END AS rate_limit_per_s,
       CASE WHEN f.first THEN h.retry_schedule_s END AS retry_schedule_s,
       CASE WHEN f.first THEN h.active END AS active,
       CASE WHEN f.first THEN coalesce(p.granted, 1000000) END AS granted,
       CASE WHEN f.first THEN coalesce(p.wait_s, 0.0) END AS wait_s,
       coalesce(c.body, CASE WHEN h.kind NOT IN ('email', 'inbox', 'pagerduty')
                                  AND c.payload <> '{}' THEN c.payload::text END) AS body,
       -- Set on new rows only: the engine renders those.
       CASE WHEN c.body IS NULL AND c.payload = '{}' THEN c.alert_ids END AS alert_ids,
       -- The claim's messages ride on its first row only.
       CASE WHEN c.delivery_id = m.first_id THEN m.messages END AS messages,
       CASE WHEN f.first THEN coalesce(p.probe, false) END AS probe,
       CASE WHEN f.first THEN coalesce(p.breaker_state, 'closed') END AS breaker,
       CASE WHEN f.first THEN coalesce(p.consecutive_failures, 0) END AS failures,
       -- Paused by the engine (delivery_outcomes.sql: pause_webhook), not disabled: rows wait.
       CASE WHEN f.first AND NOT h.active
                 AND h.disabled_reason LIKE 'paused by the delivery engine:%%'
            THEN h.disabled_reason END AS paused
FROM claimed c
JOIN hooks h USING (webhook_id)
CROSS JOIN LATERAL (SELECT c.delivery_id = h.first_id AS first) f
LEFT JOIN permit p USING (webhook_id)
CROSS JOIN msgs m
ORDER BY c.delivery_id

-- name: release
-- Graceful shutdown: rows this claimer holds but never attempted become due again at once.
UPDATE alert_delivery.delivery_queue
SET status = 'pending', next_attempt_at = now(), leased_until = NULL, leased_by = NULL,
    updated_at = now()
WHERE delivery_id = ANY(%(ids)s::bigint[]) AND status = 'in_flight' AND leased_by = %(worker_id)s

-- name: insert_inbox
INSERT INTO alert_delivery.inbox_messages (recipient, alert_id, delivery_id, severity, title, body)
SELECT * FROM unnest(%(recipients)s::text[], %(alert_ids)s::bigint[], %(delivery_ids)s::bigint[],
                     %(severities)s::text[], %(titles)s::text[], %(bodies)s::text[])
ON CONFLICT (recipient, delivery_id) DO NOTHING

-- name: worker_heartbeat
INSERT INTO alert_delivery.workers (worker_id, hostname, pid, delivered, failed)
VALUES (%(worker_id)s, %(hostname)s, %(pid)s, %(delivered)s, %(failed)s)
ON CONFLICT (worker_id) DO UPDATE
SET heartbeat_at = now(), stopped_at = NULL, delivered = EXCLUDED.delivered,
    failed = EXCLUDED.failed

-- name: worker_stopped
UPDATE alert_delivery.workers SET stopped_at = now(), heartbeat_at = now(),
    delivered = %(delivered)s, failed = %(failed)s
WHERE worker_id = %(worker_id)s

-- name: live_workers
SELECT count(*) FROM alert_delivery.workers
WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => %(stale_s)s)

-- name: pending_summary
-- What the sensor needs: due rows past the grace period, split at the cursor.
SELECT count(*) FILTER (WHERE delivery_id > %(cursor)s) AS new_rows,
       min(delivery_id) FILTER (WHERE delivery_id > %(cursor)s) AS new_first,
       max(delivery_id) FILTER (WHERE delivery_id > %(cursor)s) AS new_last,
       count(*) FILTER (WHERE delivery_id <= %(cursor)s) AS old_rows,
       min(delivery_id) FILTER (WHERE delivery_id <= %(cursor)s) AS old_first,
       max(delivery_id) FILTER (WHERE delivery_id <= %(cursor)s) AS old_last
FROM alert_delivery.delivery_queue
WHERE status IN ('pending', 'in_flight')
  AND next_attempt_at <= now() - make_interval(secs => %(min_age_s)s)

-- name: dlq_list
SELECT q.delivery_id, w.name, q.event, q.attempts, q.last_status, q.last_error,
       q.dead_at, q.alert_id
FROM alert_delivery.delivery_queue q
JOIN alert_delivery.webhooks w USING (webhook_id)
WHERE q.status = 'dead'
  AND (%(webhook_id)s::bigint IS NULL OR q.webhook_id = %(webhook_id)s)
  AND (%(since)s::timestamptz IS NULL OR q.dead_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR q.dead_at < %(until)s)
ORDER BY q.dead_at DESC, q.delivery_id DESC
LIMIT %(limit)s

-- name: dlq_replay
-- Dead rows go back to pending with a fresh attempt budget; the webhook-id stays the same.
WITH r AS (
    UPDATE alert_delivery.delivery_queue q
    SET status = 'pending', attempts = 0, attempts_started = 0, next_attempt_at = now(),
        dead_at = NULL,
        leased_until = NULL, leased_by = NULL, updated_at = now()
    WHERE q.status = 'dead'
      AND (%(ids)s::bigint[] IS NULL OR q.delivery_id = ANY(%(ids)s))
      AND (%(webhook_id)s::bigint IS NULL OR q.webhook_id = %(webhook_id)s)
      AND (%(since)s::timestamptz IS NULL OR q.dead_at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR q.dead_at < %(until)s)
    RETURNING q.delivery_id, q.alert_id, q.webhook_id
), log AS (
    INSERT INTO alert_delivery.delivery_log (delivery_id, alert_id, webhook_id, event, detail,
                                             run_id, worker_id)
    SELECT delivery_id, alert_id, webhook_id, 'replayed', %(actor)s, %(run_id)s, NULL FROM r
)
SELECT count(*), max(delivery_id), min(delivery_id) FROM r
