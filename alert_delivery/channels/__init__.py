"""Channel formatters: the body each webhook kind receives, rendered once, in Python.

The delivery engine renders a queue row when it first claims it (``render`` of the row's kind,
event and alert messages, from ``alert_delivery.alert_messages``), stores the JSON text on the
row, and every attempt signs and sends exactly those bytes. There is no SQL twin: these functions
are the only formatter. ``webhooks test`` renders a ``test`` notice the same way.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from alert_delivery.channels.email import format_email
from alert_delivery.channels.inbox import format_inbox
from alert_delivery.channels.mattermost import format_mattermost
from alert_delivery.channels.message import Message, with_runbook
from alert_delivery.channels.pagerduty import format_pagerduty
from alert_delivery.channels.slack import format_slack
from alert_delivery.channels.webhook import format_webhook

KINDS = ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox")


def render(
    kind: str,
    event: str,
    messages: Sequence[Message],
    at: datetime,
    *,
    runbook_base: str = "",
) -> dict[str, Any]:
    """The payload for one webhook kind; ``at`` stamps the generic webhook envelope.

    ``runbook_base`` is ``Settings.runbook_url``: a message without an https ``runbook_url`` links
    its alert type's page under it (or names the page as plain text when it is empty).
    """
    if not messages:
        raise ValueError("render needs at least one alert message")
    messages = [with_runbook(m, runbook_base) for m in messages]
    if kind == "slack":
        return format_slack(event, messages)
    if kind == "mattermost":
        return format_mattermost(event, messages)
    if kind == "pagerduty":
        return format_pagerduty(event, messages)
    if kind == "email":
        return format_email(event, messages)
    if kind == "inbox":
        return format_inbox(event, messages)
    return format_webhook(event, messages, at)


__all__ = ["KINDS", "render"]
