"""JSON in and out of the hot path: the body rendered, stored, signed and sent; the decoder."""

import json
from datetime import datetime
from typing import Any

from alert_delivery.channels import render

# json.dumps with these options builds a new encoder per call; one shared encoder, same bytes.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode
ERROR_MAX = 300
DICT_KINDS = frozenset(("email", "inbox"))
"""Kinds the engine reads fields of (subject, text, recipients' title...) rather than sending."""


def encode(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is: the form every stored body has."""
    return _encode(value)


def render_new(
    kind: str, event: str, messages: list[Any], at: datetime, runbook_base: str
) -> tuple[str | None, Any, str | None]:
    """A new row's ``(body, rendered value, None)``, or ``(None, None, reason)`` when it cannot
    be rendered (the row is then dead-lettered with the reason)."""
    try:
        if not messages:
            raise ValueError("none of its alerts exist")
        rendered = render(kind, event, messages, at, runbook_base=runbook_base)
        return _encode(rendered), rendered, None
    except Exception as exc:  # bad data in one row must not stop the batch: it is set aside
        # The reason names the exception and the data's complaint; rendering reads no secret.
        return None, None, f"cannot render: {type(exc).__name__}: {exc}"[:ERROR_MAX]


def with_routing_key(body: str, routing_key: str) -> str:
    """PagerDuty's key spliced in front of the stored body's members: the same bytes on every
    retry, and the key itself never stored."""
    head = '{"routing_key":' + _encode(routing_key)
    return head + "}" if body == "{}" else head + "," + body[1:]


def body_bytes(kind: str, body: str | None, payload: dict[str, Any], secrets: list[str]) -> bytes:
    """The exact bytes signed and sent; PagerDuty's routing key joins only here, never stored."""
    if body is not None:
        if kind == "pagerduty" and secrets and body.startswith("{"):
            return with_routing_key(body, secrets[0]).encode()
        return body.encode()
    if kind == "pagerduty" and secrets:
        payload = {**payload, "routing_key": secrets[0]}
    return _encode(payload).encode()


def loads_utf8(data: str | bytes) -> Any:
    """``json.loads`` without its encoding sniffing: PostgreSQL sends UTF-8. Every claimed row
    carries a jsonb payload, and the sniffing was a measurable share of the claim's client time."""
    return _decode(data if isinstance(data, str) else data.decode())
