"""Generic JSON webhook: a versioned envelope ``{version, type, id, timestamp, data}``.

``id`` is stable for one notification (it is rendered once, when the delivery engine first claims
the row, and stored with the body) and differs between notifications; receivers deduplicate
retries by the Standard Webhooks ``webhook-id`` header too.
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from alert_delivery.channels.escape import clean_text
from alert_delivery.channels.message import Message

VERSION = "1"
TYPES = {
    "trigger": "alert.triggered",
    "resolve": "alert.resolved",
    "acknowledge": "alert.acknowledged",
    "escalate": "alert.escalated",
}


@lru_cache(maxsize=8)
def utc_iso_us(at: datetime) -> str:
    # Cached: the engine renders a whole claim with one ``at``, and strftime was a tenth of a
    # webhook body's rendering time.
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_webhook(event: str, messages: Sequence[Message], at: datetime) -> dict[str, Any]:
    stamp = utc_iso_us(at)
    ids = ",".join(str(m["id"]) for m in messages)
    return {
        "version": VERSION,
        "type": TYPES.get(event, "alert.test"),
        "id": "evt_" + hashlib.md5(f"{event}:{ids}:{stamp}".encode()).hexdigest(),
        "timestamp": stamp,
        "data": {
            "count": len(messages),
            "alerts": [
                {
                    **m,
                    "title": clean_text(m["title"], 1000),
                    "description": clean_text(m["description"], 10000),
                }
                for m in messages
            ],
        },
    }
