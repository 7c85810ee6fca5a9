"""JSON in and out of the hot path: the body that is signed and sent, and the claim's decoder."""

import json
from typing import Any

from alert_delivery.delivery.store import Claimed

# json.dumps with these options builds a new encoder per call; one shared encoder, same bytes.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode


def serialise(row: Claimed, secrets: list[str]) -> bytes:
    """The exact bytes signed and sent; PagerDuty's routing key joins only here, never stored."""
    if row.body is not None:
        return row.body.encode()
    payload = row.payload
    if row.kind == "pagerduty" and secrets:
        payload = {**payload, "routing_key": secrets[0]}
    return _encode(payload).encode()


def loads_utf8(data: str | bytes) -> Any:
    """``json.loads`` without its encoding sniffing: PostgreSQL sends UTF-8. Every claimed row
    carries a jsonb payload, and the sniffing was a measurable share of the claim's client time."""
    return _decode(data if isinstance(data, str) else data.decode())
