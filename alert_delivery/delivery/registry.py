"""The webhook registry: add, list, enable, disable, remove. URLs and secrets stored encrypted."""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import connect
from alert_delivery.delivery.limits import check_rate_limit, check_retry_schedule
from alert_delivery.delivery.secrets import Vault, load_vault
from alert_delivery.delivery.signing import generate_secret, split_secrets, validate_secret
from alert_delivery.delivery.ssrf import announce_allow_list, check_url, redact_url
from alert_delivery.errors import InvalidInput

KINDS = ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox")
# PagerDuty's Events API v2 has one URL; a target of that kind needs only its routing key.
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
HTTP_KINDS = ("slack", "mattermost", "pagerduty", "webhook")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")


@dataclass(frozen=True)
class AddedWebhook:
    webhook_id: int
    name: str
    generated_secret: str | None
    """Shown once to the operator; never stored in plain text."""


@dataclass(frozen=True)
class WebhookInfo:
    webhook_id: int
    name: str
    kind: str
    url_redacted: str
    active: bool
    disabled_reason: str | None
    rate_limit_per_s: float
    retry_schedule_s: list[int] | None
    last_tested_at: str | None
    last_test_status: str | None
    breaker_state: str | None
    health: str | None


def validate_target(kind: str, url: str | None, config: dict[str, Any], settings: Settings) -> None:
    """Everything a webhook needs to be deliverable, checked before anything is stored."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown kind {kind!r}; one of {', '.join(KINDS)}", where="--kind")
    announce_allow_list(settings.allowed_targets)
    if kind == "inbox":
        recipients = config.get("recipients")
        if (
            not isinstance(recipients, list)
            or not recipients
            or not all(isinstance(r, str) and r.strip() for r in recipients)
        ):
            raise InvalidInput("inbox needs a non-empty list of recipients", where="recipients")
        return
    if not url:
        raise InvalidInput(f"kind {kind} needs a URL", where="--url")
    if kind == "email":
        check_url(
            url,
            settings.allowed_targets,
            secure="smtps",
            insecure="smtp",
            insecure_needs_allow_list=False,
            resolve=True,
            credentials=True,
        )
        to = config.get("to")
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(a, str) and _EMAIL.match(a) for a in to)
        ):
            raise InvalidInput("email needs a list of recipient addresses", where="to")
        if not isinstance(config.get("from"), str) or not _EMAIL.match(config["from"]):
            raise InvalidInput("email needs a sender address", where="from")
        return
    check_url(url, settings.allowed_targets, resolve=True)


def add_webhook(
    db_url: str,
    *,
    name: str,
    kind: str,
    url: str | None = None,
    secret: str | None = None,
    config: dict[str, Any] | None = None,
    rate_limit_per_s: float = 10.0,
    retry_schedule_s: Sequence[int] | None = None,
    settings: Settings | None = None,
) -> AddedWebhook:
    """Register a target after the SSRF guard and validation; returns its id.

    Signed kinds get a generated ``whsec_`` secret unless one is given; PagerDuty's secret is its
    routing key (required), inserted into each event at send time.
    """
    settings = settings or load_settings()
    config = dict(config or {})
    if not name.strip():
        raise InvalidInput("must not be empty", where="NAME")
    rate_limit_per_s = check_rate_limit(rate_limit_per_s)
    schedule = check_retry_schedule(retry_schedule_s)
    if kind == "pagerduty" and not url:
        url = PAGERDUTY_EVENTS_URL
    validate_target(kind, url, config, settings)
    generated = None
    if kind == "pagerduty":
        if not secret:
            raise InvalidInput("pagerduty needs its routing key as the secret", where="--secret")
    elif kind in HTTP_KINDS:
        if secret:
            for s in split_secrets(secret):
                validate_secret(s)
        else:
            secret = generated = generate_secret()
    vault = load_vault(settings)
    with connect(db_url, autocommit=True) as conn:
        try:
            row = conn.execute(
                "INSERT INTO alert_delivery.webhooks (name, kind, url_encrypted, url_redacted,"
                " secret_encrypted, key_id, config, rate_limit_per_s, retry_schedule_s)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING webhook_id",
                (
                    name,
                    kind,
                    vault.encrypt(url) if url else None,
                    redact_url(url) if url else "",
                    vault.encrypt(secret) if secret else None,
                    vault.primary_key_id,
                    Jsonb(config),
                    rate_limit_per_s,
                    schedule,
                ),
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise InvalidInput(f"a webhook named {name!r} exists", where="NAME") from None
    assert row is not None
    return AddedWebhook(int(row[0]), name, generated)


def webhook_id_by_name(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute(
        "SELECT webhook_id FROM alert_delivery.webhooks WHERE name = %s", (name,)
    ).fetchone()
    if row is None:
        raise InvalidInput(f"no webhook named {name!r}", where="NAME")
    return int(row[0])


def list_webhooks(db_url: str) -> list[WebhookInfo]:
    with connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT w.webhook_id, w.name, w.kind, w.url_redacted, w.active, w.disabled_reason,"
            " w.rate_limit_per_s, w.retry_schedule_s, w.last_tested_at::text, w.last_test_status,"
            " h.breaker_state, h.status"
            " FROM alert_delivery.webhooks w"
            " LEFT JOIN alert_delivery.webhook_health h USING (webhook_id) ORDER BY w.name"
        ).fetchall()
    return [WebhookInfo(*row) for row in rows]


def update_webhook(
    db_url: str,
    name: str,
    *,
    url: str | None = None,
    secret: str | None = None,
    rate_limit_per_s: float | None = None,
    retry_schedule_s: Sequence[int] | None = None,
    clear_retry_schedule: bool = False,
    send_resolved: bool | None = None,
    settings: Settings | None = None,
) -> list[str]:
    """Change a target in place (no remove and re-add): its id, history and queued rows stay.
    Each value is checked as ``add_webhook`` checks it; returns what changed (names, never
    values)."""
    settings = settings or load_settings()
    vault = load_vault(settings)
    changed: list[str] = []
    with connect(db_url, autocommit=True) as conn, conn.transaction():
        webhook_id = webhook_id_by_name(conn, name)
        row = conn.execute(
            "SELECT kind, config FROM alert_delivery.webhooks WHERE webhook_id = %s FOR UPDATE",
            (webhook_id,),
        ).fetchone()
        assert row is not None
        kind, config = str(row[0]), dict(row[1] or {})
        sets: list[str] = []
        values: list[Any] = []
        if url is not None:
            if kind == "inbox":
                raise InvalidInput("an inbox target has no URL", where="--url")
            validate_target(kind, url, config, settings)
            sets += ["url_encrypted = %s", "url_redacted = %s", "key_id = %s"]
            values += [vault.encrypt(url), redact_url(url), vault.primary_key_id]
            changed.append("url")
        if secret is not None:
            if kind in ("inbox", "email"):
                raise InvalidInput(f"a {kind} target has no secret", where="--secret")
            if kind != "pagerduty":
                for s in split_secrets(secret):
                    validate_secret(s)
            elif not secret.strip():
                raise InvalidInput("pagerduty needs its routing key", where="--secret")
            sets += ["secret_encrypted = %s"]
            values += [vault.encrypt(secret)]
            changed.append("secret")
        if rate_limit_per_s is not None:
            sets += ["rate_limit_per_s = %s"]
            values += [check_rate_limit(rate_limit_per_s)]
            changed.append("rate limit")
        if retry_schedule_s is not None or clear_retry_schedule:
            sets += ["retry_schedule_s = %s"]
            values += [None if clear_retry_schedule else check_retry_schedule(retry_schedule_s)]
            changed.append("retry schedule")
        if send_resolved is not None:
            sets += ["send_resolved = %s"]
            values += [send_resolved]
            changed.append("send_resolved")
        if not sets:
            raise InvalidInput(
                "nothing to change (give --url, --secret, --rate-limit, --retry-schedule or"
                " --send-resolved)",
                where="NAME",
            )
        conn.execute(
            (
                "UPDATE alert_delivery.webhooks SET "
                + ", ".join(sets)
                + ", updated_at = now() WHERE webhook_id = %s"
            ).encode(),
            [*values, webhook_id],
        )
    return changed


def set_active(db_url: str, name: str, active: bool, reason: str | None = None) -> int:
    with connect(db_url, autocommit=True) as conn:
        webhook_id = webhook_id_by_name(conn, name)
        conn.execute(
            "UPDATE alert_delivery.webhooks SET active = %s, disabled_reason = %s,"
            " updated_at = now() WHERE webhook_id = %s",
            (active, None if active else (reason or "disabled by operator"), webhook_id),
        )
        if active:
            # A re-enabled webhook starts with a closed breaker and a fresh record; a pause by
            # the engine ends, and its waiting rows are due at once.
            conn.execute(
                "UPDATE alert_delivery.webhook_health SET breaker_state = 'closed',"
                " consecutive_failures = 0, breaker_opened_at = NULL, status = 'healthy',"
                " throttled_until = NULL, bucket_empty = false WHERE webhook_id = %s",
                (webhook_id,),
            )
            conn.execute(
                "UPDATE alert_delivery.delivery_queue SET next_attempt_at = now()"
                " WHERE webhook_id = %s AND status = 'pending' AND next_attempt_at > now()",
                (webhook_id,),
            )
    return webhook_id


def remove_webhook(db_url: str, name: str) -> int:
    with connect(db_url, autocommit=True) as conn:
        webhook_id = webhook_id_by_name(conn, name)
        conn.execute("DELETE FROM alert_delivery.webhooks WHERE webhook_id = %s", (webhook_id,))
    return webhook_id


def decrypted_target(
    vault: Vault, url_token: str | None, secret_token: str | None
) -> tuple[str | None, list[str]]:
    url = vault.decrypt(url_token, what="webhook URL") if url_token else None
    secrets = split_secrets(vault.decrypt(secret_token)) if secret_token else []
    return url, secrets


def parse_config(text: str | None, *, where: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc.msg} at column {exc.colno}", where=where) from None
    if not isinstance(value, dict):
        raise InvalidInput("must be a JSON object", where=where)
    return value


def rotate_signing_secret(
    db_url: str,
    name: str,
    *,
    new_secret: str | None = None,
    finish: bool = False,
    settings: Settings | None = None,
) -> str | None:
    """Start a rotation (new secret first, the previous one still signs) or ``finish`` it.

    Returns the new secret when one was generated, to be shown once.
    """
    vault = load_vault(settings or load_settings())
    with connect(db_url) as conn:
        webhook_id = webhook_id_by_name(conn, name)
        row = conn.execute(
            "SELECT kind, secret_encrypted FROM alert_delivery.webhooks WHERE webhook_id = %s"
            " FOR UPDATE",
            (webhook_id,),
        ).fetchone()
        assert row is not None
        kind, token = row
        if kind not in ("slack", "mattermost", "webhook"):
            raise InvalidInput(f"kind {kind} has no signing secret to rotate", where="NAME")
        current = split_secrets(vault.decrypt(token)) if token else []
        generated = None
        if finish:
            secrets = current[:1]
        else:
            if new_secret:
                validate_secret(new_secret)
            else:
                new_secret = generated = generate_secret()
            secrets = [new_secret, *current[:1]]
        conn.execute(
            "UPDATE alert_delivery.webhooks SET secret_encrypted = %s, key_id = %s,"
            " updated_at = now() WHERE webhook_id = %s",
            (vault.encrypt(" ".join(secrets)), vault.primary_key_id, webhook_id),
        )
        conn.commit()
    return generated
