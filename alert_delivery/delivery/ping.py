"""`webhooks test`: one signed ping straight to the target; the result is recorded on the row.

The ping is a ``test`` notice rendered for the webhook's kind by the same formatter as every
delivery (``alert_delivery.channels.render``), so a Slack, Mattermost or PagerDuty target gets a
body it accepts and the check says something about real deliveries. A PagerDuty target gets a
trigger and then a resolve with the same test dedup key, so no incident is left open.
"""

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from alert_delivery.channels import render
from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import connect
from alert_delivery.delivery.body import encode, with_routing_key
from alert_delivery.delivery.engine import EngineConfig
from alert_delivery.delivery.http_client import open_sender
from alert_delivery.delivery.loop import run
from alert_delivery.delivery.outcome import Attempt, Verdict
from alert_delivery.delivery.registry import HTTP_KINDS, decrypted_target, webhook_id_by_name
from alert_delivery.delivery.secrets import load_vault
from alert_delivery.delivery.signing import webhook_headers
from alert_delivery.delivery.smtp import send_email
from alert_delivery.delivery.ssrf import announce_allow_list, check_url
from alert_delivery.errors import AlertDeliveryError


def ping_message(name: str, at: datetime) -> dict[str, Any]:
    """The alert message of a ping: INFO, no real alert behind it (id 0)."""
    return {
        "id": 0,
        "fingerprint": hashlib.sha256(f"alert-delivery test\x1f{name}".encode()).hexdigest(),
        "labels": {"alertname": "alert-delivery test", "webhook": name},
        "annotations": {},
        "source": "alert-delivery",
        "operation_type": "test",
        "alert_type": "TEST",
        "severity": "INFO",
        "status": "firing",
        "title": f"alert-delivery test of webhook {name}",
        "description": "A test notification from `alert-delivery webhooks test`; no action needed.",
        "details": {},
        "runbook_url": None,
        "occurrences": 1,
        "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "acknowledged_by": None,
        "event_detail": None,
    }


def ping_webhook(
    db_url: str, name: str, *, config: EngineConfig | None = None, settings: Settings | None = None
) -> Attempt:
    settings = settings or load_settings()
    config = config or EngineConfig()
    vault = load_vault(settings)
    announce_allow_list(settings.allowed_targets)
    with connect(db_url, autocommit=True) as conn:
        webhook_id = webhook_id_by_name(conn, name)
        row = conn.execute(
            "SELECT kind, url_encrypted, secret_encrypted, config FROM alert_delivery.webhooks"
            " WHERE webhook_id = %s",
            (webhook_id,),
        ).fetchone()
        assert row is not None
        kind, url_token, secret_token, target_config = row
        url, secrets = decrypted_target(vault, url_token, secret_token)
        message_id = f"ping_{uuid.uuid4().hex}"
        at = datetime.now(UTC)
        payload = render(
            kind, "test", [ping_message(name, at)], at, runbook_base=settings.runbook_url
        )
        try:
            if kind == "email":
                attempt = send_email(
                    url or "",
                    target_config,
                    payload,
                    message_id,
                    allowed=settings.allowed_targets,
                    timeout_s=config.smtp_timeout_s,
                )
            elif kind in HTTP_KINDS and url:
                check_url(url, settings.allowed_targets)
                text = encode(payload)
                if kind == "pagerduty" and secrets:
                    text = with_routing_key(text, secrets[0])
                body = text.encode()
                attempt = run(_post(url, body, message_id, secrets, config, settings))
                if kind == "pagerduty" and attempt.verdict is Verdict.DELIVERED:
                    resolve = render(kind, "resolve", [ping_message(name, at)], at)
                    closing = with_routing_key(encode(resolve), secrets[0]) if secrets else ""
                    attempt = run(
                        _post(
                            url,
                            closing.encode(),
                            f"{message_id}_resolve",
                            secrets,
                            config,
                            settings,
                        )
                    )
            else:
                attempt = Attempt(Verdict.DELIVERED, latency_ms=0.0)
        except AlertDeliveryError as exc:
            attempt = Attempt(Verdict.PERMANENT, error=str(exc))
        result = (
            f"{attempt.status} ok"
            if attempt.verdict is Verdict.DELIVERED
            else f"{attempt.status or '-'} {attempt.error or 'failed'}"
        )
        conn.execute(
            "UPDATE alert_delivery.webhooks SET last_tested_at = now(), last_test_status = %s"
            " WHERE webhook_id = %s",
            (result[:200], webhook_id),
        )
    return attempt


async def _post(
    url: str,
    body: bytes,
    message_id: str,
    secrets: list[str],
    config: EngineConfig,
    settings: Settings,
) -> Attempt:
    sender = open_sender(settings.http_client, config.sender, settings.allowed_targets)
    try:
        return await sender.post(url, body, webhook_headers(message_id, body, secrets))
    finally:
        await sender.close()
