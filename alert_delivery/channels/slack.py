"""Slack incoming webhook: attachments (severity colour bar) holding Block Kit blocks.

Alert text goes into ``plain_text`` objects only, escaped, so markup and mentions stay text.
Limits (Slack docs): header text 150, section text 3000, at most 50 blocks (10 alerts x 4).
"""

from collections.abc import Sequence
from typing import Any

from alert_delivery.channels.escape import slack_text
from alert_delivery.channels.message import (
    Message,
    description_or_placeholder,
    details_text,
    event_label,
    headline,
    runbook_text,
)

COLOURS = {"CRITICAL": "#E01E5A", "WARNING": "#ECB22E", "INFO": "#36C5F0"}
RESOLVED_COLOUR = "#2EB67D"


def _plain(text: str, emoji: bool | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "plain_text", "text": text}
    if emoji is not None:
        block["emoji"] = emoji
    return block


def _attachment(event: str, m: Message) -> dict[str, Any]:
    context = " · ".join(
        part
        for part in (
            f"Alert #{m['id']}",
            m.get("event_detail") or None,
            details_text(m.get("details")) or None,
            runbook_text(m),
        )
        if part
    )
    return {
        "color": RESOLVED_COLOUR if event == "resolve" else COLOURS.get(m["severity"], "#36C5F0"),
        "fallback": slack_text(headline(event, [m]), 300),
        "blocks": [
            {
                "type": "header",
                "text": _plain(
                    slack_text(f"{event_label(event)} [{m['severity']}] {m['title']}", 150), False
                ),
            },
            {
                "type": "section",
                "text": _plain(slack_text(description_or_placeholder(m), 2900), False),
            },
            {
                "type": "section",
                "fields": [
                    _plain(slack_text(f"Operation: {m['operation_type']}", 500)),
                    _plain(slack_text(f"Type: {m['alert_type']}", 500)),
                    _plain(slack_text(f"Severity: {m['severity']}", 500)),
                    _plain(slack_text(f"Source: {m['source']}", 500)),
                ],
            },
            {"type": "context", "elements": [_plain(slack_text(context, 1000), False)]},
        ],
    }


def format_slack(event: str, messages: Sequence[Message]) -> dict[str, Any]:
    return {
        "text": slack_text(headline(event, messages), 300),
        "attachments": [_attachment(event, m) for m in messages],
    }
