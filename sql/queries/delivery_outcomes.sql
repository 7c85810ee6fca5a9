-- What the delivery engine writes after attempts: outcomes in small groups (at most 50 rows or
-- 20 ms), the shared breaker / throttle / counters, 410 Gone, pausing a webhook.

-- name: record
-- Outcome and log row of a group of attempts in ONE statement, committed synchronously. Only rows
-- still leased by this claimer are written: a row whose lease expired belongs to whoever
-- re-claimed it. The health counters are record_health's, a second statement: a synchronous commit
-- holds its row locks until the WAL flush, and every claim of that webhook would wait for it.
-- The group arrives as one JSON array of arrays [delivery_id, status, delay_s, http_status, error,
-- latency_ms, log_event, counted]: psycopg adapts a Python list into an array element by element
-- (about 12 us a row here), one JSON encode does the whole group in well under one.
-- A body rendered at this claim is stored here, with the row's first outcome (the row is rewritten
-- anyway): every later attempt sends the stored bytes. Binary arrays, not JSON: a text literal
-- escapes every quote of every body.
-- Deferrals (event 'deferred') update the row but write no log row: webhook_health counts them.
WITH o AS (
    SELECT (e->>0)::bigint AS delivery_id, e->>1 AS status, (e->>2)::float8 AS delay_s,
           (e->>3)::int AS http_status, e->>4 AS error, (e->>5)::float8 AS latency_ms,
           e->>6 AS log_event, (e->>7)::bool AS counted
    -- jsonb: parsed once; on json every ->> would re-parse its element's text.
    FROM jsonb_array_elements(%(outcomes)s::jsonb) e
), b AS (
    SELECT * FROM unnest(%(body_ids)b::bigint[], %(bodies)b::text[]) AS b(delivery_id, body)
), upd AS (
    UPDATE alert_delivery.delivery_queue q
    SET status = o.status,
        attempts = q.attempts + o.counted::int,
        -- An outcome that sent nothing gives its claim back (see 0011_delivery_counters.sql).
        attempts_started = greatest(q.attempts_started - (NOT o.counted)::int, 0),
        body = coalesce(q.body, b.body),
        next_attempt_at = CASE WHEN o.status = 'pending'
                               THEN now() + make_interval(secs => o.delay_s)
                               ELSE now() END,
        leased_until = NULL,
        leased_by = NULL,
        last_status = CASE WHEN o.counted THEN o.http_status ELSE q.last_status END,
        last_error = CASE WHEN o.counted OR o.status = 'dead' OR o.error IS NOT NULL THEN o.error
                          ELSE q.last_error END,
        delivered_at = CASE WHEN o.status = 'delivered' THEN now() ELSE q.delivered_at END,
        dead_at = CASE WHEN o.status = 'dead' THEN now() ELSE NULL END,
        updated_at = now()
    FROM o LEFT JOIN b USING (delivery_id)
    -- = ANY(array) makes the queue side a primary-key lookup, whatever the queue's size.
    WHERE q.delivery_id = ANY (ARRAY(SELECT delivery_id FROM o)) AND q.delivery_id = o.delivery_id
      AND q.status = 'in_flight' AND q.leased_by = %(worker_id)s
    RETURNING q.delivery_id, q.alert_id, q.webhook_id, q.attempts, q.attempts_started,
              o.http_status, o.latency_ms, o.error, o.log_event
), log AS (
    INSERT INTO alert_delivery.delivery_log
        (delivery_id, alert_id, webhook_id, event, attempt, http_status, latency_ms, detail,
         run_id, worker_id)
    SELECT delivery_id, alert_id, webhook_id, log_event, attempts, http_status, latency_ms,
           -- A claim that ended without an outcome (crash, lost database) may have sent the row:
           -- say so on the next outcome, so an operator can tell a re-send from the log.
           CASE WHEN attempts_started > attempts
                THEN concat_ws('; ', error, format('%%s earlier claim(s) ended without an outcome:'
                     ' the receiver may have seen this webhook-id already',
                     attempts_started - attempts))
                ELSE error END,
           %(run_id)s, %(worker_id)s
    FROM upd
    WHERE log_event <> 'deferred'
)
SELECT count(*) FROM upd

-- name: record_health
-- The breaker, throttle and counters of a group's webhooks; returns each webhook's breaker as it
-- now is, so the process also learns what other processes recorded. Committed without waiting for
-- the WAL flush, as claim's permits are, so the health rows are locked only while the statement
-- runs; a server crash can lose the last fraction of a second of counters, never an outcome or its
-- log row. One log row when a breaker opens (closed -> open), never one per deferred delivery.
WITH cfg AS (
    SELECT set_config('synchronous_commit', 'off', true) AS sync
), hv AS (
    SELECT v.* FROM json_to_recordset(%(health)s::json)
        AS v(webhook_id bigint, ok int, failed int, reset bool, tail_failures int, lat_n int,
             lat_sum float8, lat_p95 float8, error text, deferred int, throttled int,
             throttle_s float8), cfg
), lk AS (
    -- Lock health rows in webhook_id order (as claim does) so two recorders never deadlock.
    SELECT webhook_id, breaker_state AS was FROM alert_delivery.webhook_health
    WHERE webhook_id IN (SELECT webhook_id FROM hv)
    ORDER BY webhook_id
    FOR UPDATE
), hn AS (
    SELECT hv.*, lk.was FROM hv JOIN lk USING (webhook_id)
), health AS (
    -- Expressions read h, the row as locked now, never a stale snapshot of it.
    UPDATE alert_delivery.webhook_health h
    SET total = h.total + hn.ok + hn.failed,
        succeeded = h.succeeded + hn.ok,
        failed = h.failed + hn.failed,
        deferred = h.deferred + hn.deferred,
        throttled = h.throttled + hn.throttled,
        throttled_until = CASE WHEN hn.throttle_s IS NULL THEN h.throttled_until
                               ELSE greatest(h.throttled_until,
                                             now() + make_interval(secs => hn.throttle_s)) END,
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
        probe_leased_until = CASE WHEN hn.ok + hn.failed > 0 THEN NULL
                                  ELSE h.probe_leased_until END,
        status = CASE
            WHEN hn.tail_failures > 0 AND (h.breaker_state <> 'closed' OR
                 (CASE WHEN hn.reset THEN 0 ELSE h.consecutive_failures END) + hn.tail_failures
                     >= %(threshold)s) THEN 'unavailable'
            WHEN (CASE WHEN hn.reset THEN 0 ELSE h.consecutive_failures END) + hn.tail_failures > 0
                THEN 'degraded'
            WHEN hn.ok + hn.failed = 0 THEN h.status
            ELSE 'healthy' END,
        last_success_at = CASE WHEN hn.ok > 0 THEN now() ELSE h.last_success_at END,
        last_failure_at = CASE WHEN hn.failed > 0 THEN now() ELSE h.last_failure_at END,
        last_error = coalesce(hn.error, h.last_error),
        updated_at = now()
    FROM hn
    WHERE h.webhook_id = hn.webhook_id
    RETURNING h.webhook_id, hn.was, h.breaker_state, h.consecutive_failures, h.last_error,
              greatest(0.0, extract(epoch FROM h.breaker_opened_at
                                    + make_interval(secs => %(cooldown_s)s) - now()))::float8
                  AS open_for_s
), opened AS (
    INSERT INTO alert_delivery.delivery_log (webhook_id, event, detail, worker_id)
    SELECT webhook_id, 'breaker_opened',
           format('%%s consecutive failures (last: %%s); no new request until a probe succeeds;'
                  ' deferrals are counted in webhook_health', consecutive_failures, last_error),
           %(worker_id)s
    FROM health WHERE was = 'closed' AND breaker_state = 'open'
), closed AS (
    -- A probe closed the breaker: the rows it held back (and the retries of the outage) are due
    -- now, not a cooldown or a backoff step later.
    UPDATE alert_delivery.delivery_queue q
    SET next_attempt_at = now(), updated_at = now()
    FROM health
    WHERE health.was <> 'closed' AND health.breaker_state = 'closed'
      AND q.webhook_id = health.webhook_id AND q.status = 'pending' AND q.next_attempt_at > now()
)
SELECT webhook_id, breaker_state, consecutive_failures, coalesce(open_for_s, 0.0) FROM health

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

-- name: pause_webhook
-- A webhook that made the engine fail (a claim, say) is set aside: inactive, with the reason shown
-- by `status` and `webhooks list`; its rows wait (the claim defers them: the reason starts with
-- "paused by the delivery engine:", see claim) until an operator enables it again. Others keep flowing. Its health row is
-- not touched: that row may be what fails.
WITH w AS (
    UPDATE alert_delivery.webhooks
    SET active = false, disabled_reason = %(reason)s, updated_at = now()
    WHERE webhook_id = %(webhook_id)s AND active
    RETURNING webhook_id
)
INSERT INTO alert_delivery.delivery_log (webhook_id, event, detail, run_id, worker_id)
SELECT webhook_id, 'paused', %(reason)s, %(run_id)s, %(worker_id)s FROM w

-- name: due_webhooks
-- The webhooks with due rows: where a failing claim looks for the one that makes it fail.
SELECT DISTINCT webhook_id
FROM (SELECT webhook_id FROM alert_delivery.delivery_queue
      WHERE status IN ('pending', 'in_flight') AND next_attempt_at <= now()
      ORDER BY next_attempt_at LIMIT %(limit)s) d
