"""The Python producer API: a thin call into ``alert_delivery.raise_alert`` (PL/pgSQL).

Dedup, silences, inhibition, routing, grouping, formatting and enqueueing all happen inside that
function, so an application raising alerts from SQL in its own transaction gets the same pipeline.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from alert_delivery.alerting.sqlerrors import user_errors
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

OUTCOMES = (
    "notified",
    "repeated",
    "deduplicated",
    "suppressed_duplicate_content",
    "silenced",
    "inhibited",
    "unrouted",
)


@dataclass(frozen=True)
class RaiseResult:
    """The alert (new, or the open one it deduplicated into) and what the pipeline did."""

    alert_id: int
    outcome: str


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def alert_document(fields: Mapping[str, Any]) -> str:
    """The JSON object ``raise_alert(jsonb)`` takes; unknown keys are left for SQL to reject."""
    return json.dumps({k: _jsonable(v) for k, v in fields.items()}, allow_nan=False)


def raise_alert(conn: psycopg.Connection, **fields: Any) -> RaiseResult:
    """Raise one alert in the caller's transaction.

    Fields: source (default ``api``), operation_type, alert_type, severity, title, description,
    details (object), partition_start, anomaly_id, correlation_id. Invalid input raises
    ``InvalidInput`` naming the field; the transaction is left for the caller to roll back.
    """
    try:
        document = alert_document(fields)
    except ValueError as exc:
        raise _bad_json(exc) from None
    with user_errors("alert"):
        row = conn.execute(query("alerting", "raise_alert"), {"alert": document}).fetchone()
    assert row is not None
    return RaiseResult(int(row[0]), str(row[1]))


def raise_alerts(
    conn: psycopg.Connection, alerts: Sequence[Mapping[str, Any]]
) -> list[RaiseResult]:
    """Raise many alerts in one statement (all or nothing), in order.

    Same result as ``raise_alert`` on each in turn; SQL processes a batch of new, distinct
    alerts set-based (``alert_delivery.raise_alerts``), which is what makes batches fast.
    """
    if not alerts:
        return []
    try:
        document = json.dumps(
            [{k: _jsonable(v) for k, v in a.items()} for a in alerts], allow_nan=False
        )
    except ValueError as exc:
        raise _bad_json(exc) from None
    with user_errors("alerts"):
        rows = conn.execute(query("alerting", "raise_alerts"), {"alerts": document}).fetchall()
    return [RaiseResult(int(r[0]), str(r[1])) for r in rows]


def _bad_json(exc: ValueError) -> InvalidInput:
    return InvalidInput(f"not representable as JSON ({exc})", where="details")
