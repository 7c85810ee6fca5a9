-- Delivery that nothing stops (issue 11): what the engine needs to act per attempt and to count
-- instead of logging. Depends on 0001 and 0004 alone; every column has a default, so existing
-- rows keep working and no table is rewritten.
SET LOCAL search_path TO alert_delivery, public;

-- Claims that may have put the row on the wire. Incremented by every claim and given back by an
-- outcome that sent nothing (deferred, released, dead before sending), so attempts_started
-- greater than attempts means a claim ended without an outcome (a crash or a lost database):
-- that attempt may have reached the receiver, and the re-send carries the same webhook-id.
ALTER TABLE delivery_queue ADD COLUMN attempts_started integer NOT NULL DEFAULT 0;

-- Deferrals are counted here, not logged one row per delivery: rows held back by the breaker,
-- the token bucket, a 429 or a pause. One log row marks a breaker opening (breaker_opened) and a
-- bucket's first emptying (rate_limited); bucket_empty remembers the latter until it refills.
ALTER TABLE webhook_health
    ADD COLUMN deferred        bigint NOT NULL DEFAULT 0,
    ADD COLUMN throttled       bigint NOT NULL DEFAULT 0,
    ADD COLUMN throttled_until timestamptz,
    ADD COLUMN bucket_empty    boolean NOT NULL DEFAULT false;
