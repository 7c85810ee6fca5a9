"""In-app inbox: ``{"title", "body", "severity"}``; delivery writes one row per recipient."""

from collections.abc import Sequence
from typing import Any

from alert_delivery.channels.email import block_text
from alert_delivery.channels.escape import clean_text
from alert_delivery.channels.message import Message, headline


def format_inbox(event: str, messages: Sequence[Message]) -> dict[str, Any]:
    return {
        "title": clean_text(headline(event, messages), 200),
        "severity": messages[0]["severity"],
        "body": clean_text("\n\n".join(block_text(event, m) for m in messages), 4000),
    }
