-- Delivery engine queries. For in_flight rows next_attempt_at holds the lease end, so the one
-- partial index delivery_queue_due serves new work, retries and expired leases alike.

-- name: claim
-- Claim due rows (new work, retries, expired leases) and, in the same statement, ask each
-- webhook's breaker and token bucket (shared by every process through webhook_health) how many
-- of its rows may be sent now; the engine defers the rest. Health rows are locked in webhook_id
-- order, as record_health does, so two claimers never deadlock.
WITH cfg AS (
    -- A claim lost in a server crash only leaves its rows due again, so its commit need not wait
    -- for the WAL flush; outcomes (record) stay synchronous.
    SELECT set_config('synchronous_commit', 'off', true) AS sync
), due AS (
    SELECT q.delivery_id
    FROM alert_delivery.delivery_queue q, cfg
    WHERE q.status IN ('pending', 'in_flight')
      AND q.next_attempt_at <= now() - make_interval(secs => %(min_age_s)s)
    ORDER BY q.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF q SKIP LOCKED
), claimed AS (
    UPDATE alert_delivery.delivery_queue q
    SET status = 'in_flight',
        leased_until = now() + make_interval(secs => %(lease_s)s),
        next_attempt_at = now() + make_interval(secs => %(lease_s)s),
        leased_by = %(worker_id)s,
        updated_at = now()
    -- = ANY(ARRAY(...)) keeps this a primary-key lookup however large the queue grows.
    WHERE q.delivery_id = ANY (ARRAY(SELECT delivery_id FROM due))
    RETURNING q.delivery_id, q.message_id, q.alert_id, q.webhook_id, q.event, q.payload,
              q.attempts, q.alert_ids, q.body
), hooks AS (
    -- The claim's webhooks, each once, with its first row: the webhook's columns are joined and
    -- sent once per webhook rather than carried (and sorted) with every row.
    SELECT w.webhook_id, w.kind, w.name, w.url_encrypted, w.url_redacted, w.secret_encrypted,
           w.config, w.rate_limit_per_s, w.retry_schedule_s, w.active, c.first_id, c.wanted
    FROM (SELECT webhook_id, min(delivery_id) AS first_id, count(*)::int AS wanted
          FROM claimed GROUP BY webhook_id) c
    JOIN alert_delivery.webhooks w USING (webhook_id)
), req AS (
    SELECT webhook_id, wanted, rate_limit_per_s AS rate FROM hooks WHERE active
), cur AS (
    SELECT h.webhook_id, r.wanted, r.rate, h.breaker_state, h.breaker_opened_at,
           h.probe_leased_until,
           least(r.rate, coalesce(h.tokens, r.rate)
                 + r.rate * extract(epoch FROM now() - coalesce(h.tokens_at, now()))) AS avail,
           (h.breaker_state = 'open'
                AND h.breaker_opened_at <= now() - make_interval(secs => %(cooldown_s)s))
           OR (h.breaker_state = 'half_open'
                AND coalesce(h.probe_leased_until, '-infinity') < now()) AS probe_ok
    FROM alert_delivery.webhook_health h
    JOIN req r USING (webhook_id)
    ORDER BY h.webhook_id
    FOR UPDATE OF h
), grant_ AS (
    SELECT cur.*,
           CASE WHEN breaker_state = 'closed' THEN greatest(0, least(wanted, floor(avail)::int))
                WHEN probe_ok THEN greatest(0, least(1, floor(avail)::int))
                ELSE 0 END AS granted
    FROM cur
), permit AS (
    UPDATE alert_delivery.webhook_health h
    SET tokens = g.avail - g.granted,
        tokens_at = now(),
        breaker_state = CASE WHEN g.probe_ok AND g.granted > 0 THEN 'half_open'
                             ELSE h.breaker_state END,
        probe_leased_until = CASE WHEN g.probe_ok AND g.granted > 0
                                  THEN now() + make_interval(secs => %(lease_s)s)
                                  ELSE h.probe_leased_until END,
        updated_at = now()
    FROM grant_ g
    WHERE h.webhook_id = g.webhook_id
    RETURNING h.webhook_id, g.granted,
        CASE WHEN g.breaker_state = 'closed' OR g.probe_ok
                 THEN greatest(0.0, (1.0 - (g.avail - g.granted)) / g.rate)
             WHEN g.breaker_state = 'open'
                 THEN greatest(0.0, extract(epoch FROM g.breaker_opened_at
                                    + make_interval(secs => %(cooldown_s)s) - now()))::float8
             ELSE greatest(0.0, extract(epoch FROM g.probe_leased_until - now()))::float8
        END AS wait_s
), msgs AS (
    -- The alert messages of the claim's new rows, each alert once, in one call for the whole
    -- claim (a call per row cost ~0.1 ms each); the engine picks each row's by its alert_ids.
    SELECT (SELECT min(delivery_id) FROM claimed) AS first_id,
           alert_delivery.alert_messages(array_agg(DISTINCT a.id)) AS messages
    FROM claimed c CROSS JOIN LATERAL unnest(c.alert_ids) AS a(id)
    WHERE c.body IS NULL AND c.payload = '{}'
)
-- The webhook's own columns (name through wait_s) come only on its first row of the claim, NULL
-- on the others (store.claim copies them over): the encrypted URL and secret were most of the
-- bytes the client decoded per row.
-- Three kinds of row: rendered (body set: sent as stored), new (body NULL, payload '{}': the
-- engine renders its alert messages and stores the body before sending) and legacy (body NULL,
-- a payload enqueued before bodies were rendered in Python: sent from the payload).
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
       CASE WHEN c.delivery_id = m.first_id THEN m.messages END AS messages
FROM claimed c
JOIN hooks h USING (webhook_id)
CROSS JOIN LATERAL (SELECT c.delivery_id = h.first_id AS first) f
LEFT JOIN permit p USING (webhook_id)
CROSS JOIN msgs m
ORDER BY c.delivery_id

-- name: write_bodies
-- The bodies rendered at a claim, in one statement, committed (synchronously: a retry must find
-- them) before any of them is sent. Only a row without a body takes one: if two claimers ever
-- rendered the same row (an expired lease), the first body stays and the row count says so.
-- Binary parameters: a text array literal escapes every quote of every JSON body, which cost
-- as much as the UPDATE itself.
UPDATE alert_delivery.delivery_queue q
SET body = x.body
FROM unnest(%(ids)b::bigint[], %(bodies)b::text[]) AS x(id, body)
-- = ANY keeps the queue side a primary-key lookup, whatever the queue's size.
WHERE q.delivery_id = ANY (%(ids)b::bigint[]) AND q.delivery_id = x.id AND q.body IS NULL

-- name: stored_bodies
SELECT delivery_id, body FROM alert_delivery.delivery_queue WHERE delivery_id = ANY (%(ids)s)

-- name: record
-- Outcome and log row of a whole batch in ONE statement, committed synchronously. Only rows still
-- leased by this claimer are written: a row whose lease expired belongs to whoever re-claimed it.
-- The health counters are record_health's, a second statement: a synchronous commit holds its row
-- locks until the WAL flush, and every claim of that webhook would wait for it.
-- The batch arrives as one JSON array of arrays [delivery_id, status, delay_s, http_status, error,
-- latency_ms, log_event, counted]: psycopg adapts a Python list into an array element by element
-- (about 12 us a row here), one JSON encode does the whole batch in well under one.
WITH o AS (
    SELECT (e->>0)::bigint AS delivery_id, e->>1 AS status, (e->>2)::float8 AS delay_s,
           (e->>3)::int AS http_status, e->>4 AS error, (e->>5)::float8 AS latency_ms,
           e->>6 AS log_event, (e->>7)::bool AS counted
    -- jsonb: parsed once; on json every ->> would re-parse its element's text.
    FROM jsonb_array_elements(%(outcomes)s::jsonb) e
), upd AS (
    UPDATE alert_delivery.delivery_queue q
    SET status = o.status,
        attempts = q.attempts + o.counted::int,
        next_attempt_at = CASE WHEN o.status = 'pending'
                               THEN now() + make_interval(secs => o.delay_s)
                               ELSE now() END,
        leased_until = NULL,
        leased_by = NULL,
        last_status = CASE WHEN o.counted THEN o.http_status ELSE q.last_status END,
        last_error = CASE WHEN o.counted OR o.status = 'dead' THEN o.error ELSE q.last_error END,
        delivered_at = CASE WHEN o.status = 'delivered' THEN now() ELSE q.delivered_at END,
        dead_at = CASE WHEN o.status = 'dead' THEN now() ELSE NULL END,
        updated_at = now()
    FROM o
    -- = ANY(array) makes the queue side a primary-key lookup, whatever the queue's size.
    WHERE q.delivery_id = ANY (ARRAY(SELECT delivery_id FROM o)) AND q.delivery_id = o.delivery_id
      AND q.status = 'in_flight' AND q.leased_by = %(worker_id)s
    RETURNING q.delivery_id, q.alert_id, q.webhook_id, q.attempts, o.http_status, o.latency_ms,
              o.error, o.log_event
), log AS (
    INSERT INTO alert_delivery.delivery_log
        (delivery_id, alert_id, webhook_id, event, attempt, http_status, latency_ms, detail,
         run_id, worker_id)
    SELECT delivery_id, alert_id, webhook_id, log_event, attempts, http_status, latency_ms, error,
           %(run_id)s, %(worker_id)s
    FROM upd
)
SELECT count(*) FROM upd

-- name: record_health
-- The breaker and the counters of a batch's webhooks. Committed without waiting for the WAL flush,
-- as claim's permits are, so the health rows are locked only while the statement runs; a server
-- crash can lose the last fraction of a second of counters, never an outcome or its log row.
WITH cfg AS (
    SELECT set_config('synchronous_commit', 'off', true) AS sync
), hv AS (
    SELECT v.* FROM json_to_recordset(%(health)s::json)
        AS v(webhook_id bigint, ok int, failed int, reset bool, tail_failures int, lat_n int,
             lat_sum float8, lat_p95 float8, error text), cfg
), lk AS (
    -- Lock health rows in webhook_id order (as claim does) so two recorders never deadlock.
    SELECT webhook_id FROM alert_delivery.webhook_health
    WHERE webhook_id IN (SELECT webhook_id FROM hv)
    ORDER BY webhook_id
    FOR UPDATE
), hn AS (
    SELECT hv.* FROM hv JOIN lk USING (webhook_id)
), health AS (
    -- Expressions read h, the row as locked now, never a stale snapshot of it.
    UPDATE alert_delivery.webhook_health h
    SET total = h.total + hn.ok + hn.failed,
        succeeded = h.succeeded + hn.ok,
        failed = h.failed + hn.failed,
        consecutive_failures = CASE WHEN hn.reset THEN hn.tail_failures
                                    ELSE h.consecutive_failures + hn.tail_failures END,
        avg_latency_ms = CASE WHEN hn.lat_n = 0 THEN h.avg_latency_ms
                              ELSE (coalesce(h.avg_latency_ms, 0) * h.total + hn.lat_sum)
                                   / (h.total + hn.lat_n) END,
        -- An exponentially weighted p95: cheap, and close enough for a dashboard.
        p95_latency_ms = CASE WHEN hn.lat_n = 0 THEN h.p95_latency_ms
                              ELSE coalesce(0.8 * h.p95_latency_ms + 0.2 * hn.lat_p95,
                                            hn.lat_p95) END,
        breaker_state = CASE
            WHEN hn.tail_failures > 0 AND (h.breaker_state = 'half_open' OR
                 (CASE WHEN hn.reset THEN 0 ELSE h.consecutive_failures END) + hn.tail_failures
                     >= %(threshold)s) THEN 'open'
            WHEN hn.reset THEN 'closed'
            ELSE h.breaker_state END,
        breaker_opened_at = CASE
            WHEN hn.tail_failures > 0 AND (h.breaker_state = 'half_open' OR
                 (h.breaker_state = 'closed' AND
                  (CASE WHEN hn.reset THEN 0 ELSE h.consecutive_failures END) + hn.tail_failures
                      >= %(threshold)s)) THEN now()
            WHEN hn.reset THEN NULL
            ELSE h.breaker_opened_at END,
        probe_leased_until = NULL,
        status = CASE
            WHEN hn.tail_failures > 0 AND (h.breaker_state <> 'closed' OR
                 (CASE WHEN hn.reset THEN 0 ELSE h.consecutive_failures END) + hn.tail_failures
                     >= %(threshold)s) THEN 'unavailable'
            WHEN (CASE WHEN hn.reset THEN 0 ELSE h.consecutive_failures END) + hn.tail_failures > 0
                THEN 'degraded'
            ELSE 'healthy' END,
        last_success_at = CASE WHEN hn.ok > 0 THEN now() ELSE h.last_success_at END,
        last_failure_at = CASE WHEN hn.failed > 0 THEN now() ELSE h.last_failure_at END,
        last_error = coalesce(hn.error, h.last_error),
        updated_at = now()
    FROM hn
    WHERE h.webhook_id = hn.webhook_id
    RETURNING h.webhook_id
)
SELECT count(*) FROM health

-- name: release
-- Graceful shutdown: rows this claimer holds but never attempted become due again at once.
UPDATE alert_delivery.delivery_queue
SET status = 'pending', next_attempt_at = now(), leased_until = NULL, leased_by = NULL,
    updated_at = now()
WHERE delivery_id = ANY(%(ids)s::bigint[]) AND status = 'in_flight' AND leased_by = %(worker_id)s

-- name: endpoint_gone
-- 410 Gone: disable the webhook and dead-letter everything still queued for it.
WITH w AS (
    UPDATE alert_delivery.webhooks
    SET active = false, disabled_reason = %(reason)s, updated_at = now()
    WHERE webhook_id = %(webhook_id)s
    RETURNING webhook_id
), dead AS (
    UPDATE alert_delivery.delivery_queue q
    SET status = 'dead', dead_at = now(), last_error = %(reason)s, leased_until = NULL,
        leased_by = NULL, updated_at = now()
    FROM w
    WHERE q.webhook_id = w.webhook_id AND q.status = 'pending'
    RETURNING q.delivery_id, q.alert_id, q.webhook_id, q.attempts
)
INSERT INTO alert_delivery.delivery_log
    (delivery_id, alert_id, webhook_id, event, attempt, detail, run_id, worker_id)
SELECT delivery_id, alert_id, webhook_id, 'dead_lettered', attempts, %(reason)s, %(run_id)s,
       %(worker_id)s
FROM dead

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
    SET status = 'pending', attempts = 0, next_attempt_at = now(), dead_at = NULL,
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
