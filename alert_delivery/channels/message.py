"""The normalised alert message (``alert_delivery.alert_message`` in SQL) and shared wording."""

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

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
