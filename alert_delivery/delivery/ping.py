"""`webhooks test`: one signed ping straight to the target; the result is recorded on the row."""

import uuid
from datetime import UTC, datetime

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import connect
from alert_delivery.delivery.engine import EngineConfig, serialise
from alert_delivery.delivery.loop import run
from alert_delivery.delivery.outcome import Attempt, Verdict
from alert_delivery.delivery.registry import HTTP_KINDS, decrypted_target, webhook_id_by_name
from alert_delivery.delivery.secrets import load_vault
from alert_delivery.delivery.sender import Sender
from alert_delivery.delivery.signing import webhook_headers
from alert_delivery.delivery.smtp import send_email
from alert_delivery.delivery.ssrf import announce_allow_list, check_url
from alert_delivery.delivery.store import Claimed
from alert_delivery.errors import AlertDeliveryError


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
        sent_at = datetime.now(UTC).isoformat()
        payload = {
            "type": "ping",
            "webhook": name,
            "sent_at": sent_at,
            "text": "alert-delivery test",
        }
        try:
            if kind == "email":
                attempt = send_email(
                    url or "",
                    target_config,
                    {"subject": "alert-delivery test", "text": payload["text"]},
                    message_id,
                    allowed=settings.allowed_targets,
                    timeout_s=config.smtp_timeout_s,
                )
            elif kind in HTTP_KINDS and url:
                check_url(url, settings.allowed_targets)
                fake = Claimed(
                    0,
                    message_id,
                    None,
                    webhook_id,
                    "test",
                    payload,
                    0,
                    kind,
                    name,
                    None,
                    "",
                    None,
                    {},
                    1.0,
                    None,
                    True,
                )
                body = serialise(fake, secrets)
                attempt = run(_post(url, body, message_id, secrets, config, settings))
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
    sender = Sender(config.sender, settings.allowed_targets)
    try:
        return await sender.post(url, body, webhook_headers(message_id, body, secrets))
    finally:
        await sender.close()
