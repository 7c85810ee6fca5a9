"""The alert message (an element of SQL ``alert_delivery.alert_messages``) and shared wording."""

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from alert_delivery.alerting.runbooks import runbook_link, runbook_page
from alert_delivery.channels.escape import safe_url

Message = Mapping[str, Any]

EVENT_LABELS = {
    "trigger": "FIRING",
    "resolve": "RESOLVED",
    "acknowledge": "ACKNOWLEDGED",
    "escalate": "ESCALATED",
}
DETAIL_KEYS = (
    "anomaly_type",
    "bottleneck_type",
    "z_score",
    "p99_ratio",
    "metric_id",
    "duration_ms",
    "baseline_ms",
    "pearson_r",
    "detected_at",
)


def event_label(event: str) -> str:
    return EVENT_LABELS.get(event, "TEST")


def _json_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # jsonb prints numbers as plain decimals (1e-07 -> 0.0000001).
        return format(Decimal(json.dumps(value)), "f")
    return str(value)


def details_text(details: Mapping[str, Any] | None) -> str:
    """``z_score=3.2, duration_ms=1200`` for the known detail keys present."""
    details = details or {}
    return ", ".join(
        f"{key}={_json_scalar(details[key])}"
        for key in DETAIL_KEYS
        if isinstance(details.get(key), str | int | float)
    )


def headline(event: str, messages: Sequence[Message]) -> str:
    """``FIRING [CRITICAL] merge: title`` for one alert, ``FIRING: 3 alerts (TYPE)`` for a batch."""
    first = messages[0]
    if len(messages) == 1:
        return (
            f"{event_label(event)} [{first['severity']}] {first['operation_type']}: "
            f"{first['title']}"
        )
    return f"{event_label(event)}: {len(messages)} alerts ({first['alert_type']})"


def description_or_placeholder(message: Message) -> str:
    description = str(message.get("description") or "")
    return description if description.strip(" ") else "(no description)"


def with_runbook(message: Message, base: str) -> Message:
    """The message with the runbook link to show: its own https ``runbook_url`` if it has one,
    else the alert type's page under ``base`` (``Settings.runbook_url``), else None."""
    own = message.get("runbook_url")
    given = safe_url(own)
    if given is not None and given == own:
        return message  # the common case: alert_messages already passed it through safe_url
    link = safe_url(runbook_link(str(message.get("alert_type") or ""), given, base))
    return message if link == own else {**message, "runbook_url": link}


def runbook_text(message: Message) -> str | None:
    """``Runbook: <link>``, or ``Runbook: docs/runbooks/<page>.md`` as plain text when there is
    no link but the alert type has a page; None when neither."""
    url = message.get("runbook_url")
    if url:
        return f"Runbook: {url}"
    page = runbook_page(str(message.get("alert_type") or ""))
    return f"Runbook: {page}" if page else None
