"""Mattermost incoming webhook: Slack-compatible attachments with hex colours.

Text and field values are Markdown (escaped); title and fallback are plain but still expand
mentions, so every @ is broken with a zero-width space.
"""

from collections.abc import Sequence
from typing import Any

from alert_delivery.alerting.runbooks import runbook_page
from alert_delivery.channels.escape import mattermost_plain, mattermost_text
from alert_delivery.channels.message import (
    Message,
    description_or_placeholder,
    details_text,
    event_label,
    headline,
)

COLOURS = {"CRITICAL": "#FF0000", "WARNING": "#FFA500", "INFO": "#439FE0"}
RESOLVED_COLOUR = "#008000"


def _attachment(event: str, m: Message) -> dict[str, Any]:
    attachment: dict[str, Any] = {
        "fallback": mattermost_plain(headline(event, [m]), 600),
        "color": RESOLVED_COLOUR if event == "resolve" else COLOURS.get(m["severity"], "#439FE0"),
        "title": mattermost_plain(f"{event_label(event)} [{m['severity']}] {m['title']}", 500),
        "text": mattermost_text(description_or_placeholder(m), 6000),
        "fields": [
            {
                "short": True,
                "title": "Operation",
                "value": mattermost_text(m["operation_type"], 400),
            },
            {"short": True, "title": "Type", "value": mattermost_text(m["alert_type"], 400)},
            {"short": True, "title": "Severity", "value": m["severity"]},
            {
                "short": False,
                "title": "Details",
                "value": mattermost_text(details_text(m.get("details")), 1000),
            },
        ],
        "footer": mattermost_plain(f"alert-delivery · alert #{m['id']}", 200),
    }
    if m.get("event_detail"):
        attachment["fields"].append(
            {"short": False, "title": "Note", "value": mattermost_text(m["event_detail"], 1000)}
        )
    if m.get("runbook_url"):
        attachment["title_link"] = m["runbook_url"]
    else:
        page = runbook_page(str(m.get("alert_type") or ""))
        if page:
            attachment["fields"].append(
                {"short": False, "title": "Runbook", "value": mattermost_text(page, 400)}
            )
    return attachment


def format_mattermost(event: str, messages: Sequence[Message]) -> dict[str, Any]:
    return {
        "text": mattermost_text(headline(event, messages), 600),
        "attachments": [_attachment(event, m) for m in messages],
    }
