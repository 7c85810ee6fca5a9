-- Finite, bounded webhook limits. NaN and Infinity both pass 0001's CHECK (rate_limit_per_s > 0)
-- (PostgreSQL orders NaN above every number), and one webhook whose rate was NaN made the claim's
-- floor(avail)::int fail for every worker, stopping delivery to all the others. Same bounds as
-- alert_delivery/delivery/limits.py. Depends on 0001 alone.
SET LOCAL search_path TO alert_delivery, public;

-- Repair first, keeping each row: a NaN or infinite rate becomes the default 10/s, a finite one
-- outside the range its nearest bound (a slow webhook stays slow), a bad retry schedule the
-- default schedule (NULL). Each repair is noted on the webhook (shown by `webhooks list`) and in
-- the delivery log.
CREATE TEMPORARY TABLE finite_limits_repair ON COMMIT DROP AS
SELECT webhook_id, bad_rate, bad_schedule, new_rate,
       concat_ws('; ',
           CASE WHEN bad_rate THEN format('rate limit %s/s was out of range, set to %s/s'
                                          ' by migration 0009', rate_limit_per_s, new_rate) END,
           CASE WHEN bad_schedule THEN 'retry schedule was out of range, reset to the default'
                                       ' by migration 0009' END) AS note
FROM (SELECT webhook_id, rate_limit_per_s,
             NOT (rate_limit_per_s <> 'NaN'::float8
                  AND rate_limit_per_s >= 0.001 AND rate_limit_per_s <= 100000) AS bad_rate,
             CASE WHEN rate_limit_per_s IN ('NaN', 'Infinity', '-Infinity') THEN 10
                  ELSE least(greatest(rate_limit_per_s, 0.001), 100000) END AS new_rate,
             -- CASE fixes the evaluation order: array_position refuses multidimensional arrays.
             CASE WHEN retry_schedule_s IS NULL THEN false
                  WHEN array_ndims(retry_schedule_s) IS DISTINCT FROM 1 THEN true
                  ELSE NOT (cardinality(retry_schedule_s) BETWEEN 1 AND 100
                            AND array_position(retry_schedule_s, NULL) IS NULL
                            AND 0 <= ALL (retry_schedule_s)
                            AND 604800 >= ALL (retry_schedule_s)) END AS bad_schedule
      FROM webhooks) w
WHERE bad_rate OR bad_schedule;

UPDATE webhooks w
SET rate_limit_per_s = CASE WHEN r.bad_rate THEN r.new_rate ELSE w.rate_limit_per_s END,
    retry_schedule_s = CASE WHEN r.bad_schedule THEN NULL ELSE w.retry_schedule_s END,
    disabled_reason = concat_ws('; ', w.disabled_reason, r.note),
    updated_at = now()
FROM finite_limits_repair r
WHERE w.webhook_id = r.webhook_id;

-- A bucket a NaN or infinite rate left behind would stay that way: start it full again.
UPDATE webhook_health
SET tokens = NULL, tokens_at = NULL
WHERE webhook_id IN (SELECT webhook_id FROM finite_limits_repair)
   OR tokens IN ('NaN', 'Infinity', '-Infinity');

INSERT INTO delivery_log (webhook_id, event, detail)
SELECT webhook_id, 'config_repaired', note FROM finite_limits_repair;

ALTER TABLE webhooks DROP CONSTRAINT IF EXISTS webhooks_rate_limit_per_s_check;
-- <> 'NaN' first: NaN compares greater than every number, so the range alone would accept it.
ALTER TABLE webhooks ADD CONSTRAINT webhooks_rate_limit_finite
    CHECK (rate_limit_per_s <> 'NaN'::float8
           AND rate_limit_per_s >= 0.001 AND rate_limit_per_s <= 100000);

-- A NULL step would make the ALL comparisons NULL, which a CHECK lets through: hence
-- array_position, after the CASE has made sure the array is one-dimensional.
ALTER TABLE webhooks ADD CONSTRAINT webhooks_retry_schedule_bounded
    CHECK (CASE WHEN retry_schedule_s IS NULL THEN true
                WHEN array_ndims(retry_schedule_s) <> 1 THEN false
                ELSE cardinality(retry_schedule_s) BETWEEN 1 AND 100
                     AND array_position(retry_schedule_s, NULL) IS NULL
                     AND 0 <= ALL (retry_schedule_s) AND 604800 >= ALL (retry_schedule_s) END);
