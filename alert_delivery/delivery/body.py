"""JSON in and out of the hot path: the body rendered, stored, signed and sent; the decoder."""

import json
from datetime import datetime
from typing import Any

from alert_delivery.channels import render
from alert_delivery.delivery.store import DICT_KINDS, Claimed

# json.dumps with these options builds a new encoder per call; one shared encoder, same bytes.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode
ERROR_MAX = 300


def encode(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is: the form every stored body has."""
    return _encode(value)


def render_row(row: Claimed, at: datetime, runbook_base: str) -> str | None:
    """Render a new row's messages into ``row.body`` (and ``row.payload`` for the kinds that read
    fields); returns the body, or None with ``row.error`` set when the row cannot be rendered."""
    messages, row.messages = row.messages, None
    try:
        if not messages:
            raise ValueError("none of its alerts exist")
        rendered = render(row.kind, row.event, messages, at, runbook_base=runbook_base)
        body = _encode(rendered)
    except Exception as exc:  # bad data in one row must not stop the batch: it is set aside
        # The reason names the exception and the data's complaint; rendering reads no secret.
        row.error = f"cannot render: {type(exc).__name__}: {exc}"[:ERROR_MAX]
        return None
    row.body = body
    if row.kind in DICT_KINDS:
        row.payload = rendered
    return body


def with_routing_key(body: str, routing_key: str) -> str:
    """PagerDuty's key spliced in front of the stored body's members: the same bytes on every
    retry, and the key itself never stored."""
    head = '{"routing_key":' + _encode(routing_key)
    return head + "}" if body == "{}" else head + "," + body[1:]


def serialise(row: Claimed, secrets: list[str]) -> bytes:
    """The exact bytes signed and sent; PagerDuty's routing key joins only here, never stored."""
    if row.body is not None:
        if row.kind == "pagerduty" and secrets and row.body.startswith("{"):
            return with_routing_key(row.body, secrets[0]).encode()
        return row.body.encode()
    payload = row.payload
    if row.kind == "pagerduty" and secrets:
        payload = {**payload, "routing_key": secrets[0]}
    return _encode(payload).encode()


def loads_utf8(data: str | bytes) -> Any:
    """``json.loads`` without its encoding sniffing: PostgreSQL sends UTF-8. Every claimed row
    carries a jsonb payload, and the sniffing was a measurable share of the claim's client time."""
    return _decode(data if isinstance(data, str) else data.decode())
