-- API tokens for `alert-delivery serve`. Only the SHA-256 of a token is stored (tokens are 256
-- random bits, so a fast hash is enough); the token itself is printed once by `tokens add` and
-- never kept. Scopes: ingest (raise, ack, resolve), read (GET), admin (everything, silences).
-- Depends on 0001 alone.
SET LOCAL search_path TO alert_delivery, public;

CREATE TABLE api_tokens (
    token_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
    scope        text NOT NULL CHECK (scope IN ('ingest', 'read', 'admin')),
    token_sha256 text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    rate_per_s   double precision NOT NULL DEFAULT 100
                 CHECK (rate_per_s >= 0.01 AND rate_per_s <= 1000000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- One live token per name; revoked names may be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Open alerts with an end (Alertmanager's endsAt): `serve` resolves them once it passes.
CREATE INDEX alerts_open_ends_at ON alerts (ends_at)
    WHERE status IN ('firing', 'acknowledged') AND ends_at IS NOT NULL;
