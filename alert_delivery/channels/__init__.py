"""Channel formatters: the body each webhook kind receives, built at enqueue time.

The queued payloads are built by the SQL twins of these functions (``alert_delivery.format_*`` in
sql/migrations/0003_alerting.sql) so SQL producers get them too; these pure functions are the
readable reference, held equal to the SQL by tests/integration/test_alerting_parity.py. Both take
normalised alert messages (``alert_delivery.alert_message``).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from alert_delivery.channels.email import format_email
from alert_delivery.channels.inbox import format_inbox
from alert_delivery.channels.mattermost import format_mattermost
from alert_delivery.channels.message import Message
from alert_delivery.channels.pagerduty import format_pagerduty
from alert_delivery.channels.slack import format_slack
from alert_delivery.channels.webhook import format_webhook

KINDS = ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox")


def render(kind: str, event: str, messages: Sequence[Message], at: datetime) -> dict[str, Any]:
    """The payload for one webhook kind; ``at`` stamps the generic webhook envelope."""
    if not messages:
        raise ValueError("render needs at least one alert message")
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
