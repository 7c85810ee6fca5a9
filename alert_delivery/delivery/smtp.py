"""Email over SMTP (stdlib smtplib, run in a thread), with the same verdicts as HTTP.

The host is resolved and checked by the SSRF guard, then the checked address itself is dialled,
so DNS cannot change the answer in between. ``smtp://user:password@host:587`` authenticates
(SMTP AUTH) and then requires STARTTLS: credentials never cross the wire in clear. The whole URL,
password included, is encrypted at rest like every webhook URL and shown redacted.
"""

import smtplib
import ssl
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit

from alert_delivery.config import IPNetwork
from alert_delivery.delivery.outcome import Attempt, Verdict
from alert_delivery.delivery.ssrf import check_address, parse_ip, resolve_host
from alert_delivery.errors import TargetForbidden


def build_message(payload: dict[str, Any], config: dict[str, Any], message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = str(payload.get("subject") or "alert")
    msg["From"] = str(config["from"])
    msg["To"] = ", ".join(str(a) for a in config["to"])
    # Stable across retries, like webhook-id: mail clients and filters can deduplicate.
    msg["Message-ID"] = f"<{message_id}@alert-delivery>"
    msg["Date"] = formatdate(usegmt=True)  # RFC 5322 requires it; the time of this attempt
    msg.set_content(str(payload.get("text") or ""))
    if payload.get("html"):
        msg.add_alternative(str(payload["html"]), subtype="html")
    return msg


def send_email(
    url: str,
    config: dict[str, Any],
    payload: dict[str, Any],
    message_id: str,
    *,
    allowed: Sequence[IPNetwork],
    timeout_s: float,
) -> Attempt:
    """Blocking: call through ``asyncio.to_thread``."""
    started = time.perf_counter()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
        literal = parse_ip(host)
        addresses = [literal] if literal is not None else resolve_host(host, port)
        for addr in addresses:
            check_address(addr, allowed, host=f"{parts.scheme}://{host}/…")
        msg = build_message(payload, config, message_id)
    except TargetForbidden as exc:
        return Attempt(Verdict.PERMANENT, error=str(exc))
    except (KeyError, ValueError) as exc:
        return Attempt(Verdict.PERMANENT, error=f"malformed email target: {type(exc).__name__}")
    target = str(addresses[0])
    try:
        client: smtplib.SMTP
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                target, port, timeout=timeout_s, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(target, port, timeout=timeout_s)
        with client:
            client.ehlo()
            if parts.scheme == "smtp" and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            elif parts.scheme == "smtp" and parts.username:
                return _done(
                    Verdict.PERMANENT,
                    None,
                    "the server offers no STARTTLS; credentials are never sent in clear",
                    started,
                )
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        verdict = Verdict.RETRY if all(400 <= c < 500 for c in codes) else Verdict.PERMANENT
        return _done(verdict, codes[0] if codes else None, "recipients refused", started)
    except smtplib.SMTPResponseException as exc:
        verdict = Verdict.RETRY if 400 <= exc.smtp_code < 500 else Verdict.PERMANENT
        return _done(verdict, exc.smtp_code, f"SMTP {exc.smtp_code}", started)
    except (smtplib.SMTPException, OSError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return _done(Verdict.RETRY, None, f"SMTP connection failed: {reason}", started)
    return _done(Verdict.DELIVERED, 250, None, started)


def _done(verdict: Verdict, status: int | None, error: str | None, started: float) -> Attempt:
    return Attempt(
        verdict, status=status, error=error, latency_ms=(time.perf_counter() - started) * 1000.0
    )
