"""The Python producer API, beside the SQL one (``alert_delivery.raise_alert``/``raise_alerts``).

Both run the same PL/pgSQL pipeline (sql/functions/05_raise.sql) in the caller's transaction:
dedup by label set, content duplicates, silences, inhibition, routing, grouping, enqueueing.
An alert is ``labels`` (its identity) and ``annotations`` (title, description, runbook_url,
free keys); the well-known fields ``source``, ``operation_type``, ``alert_type``, ``severity``,
``title`` and ``description`` are accepted as shorthands for those labels and annotations.
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
    "resolved",
    "historical",
)


@dataclass(frozen=True)
class RaiseResult:
    """The alert (new, or the open one it deduplicated into) and what the pipeline did.

    ``resolved``: the input's ``ends_at`` had passed and it resolved the open alert of its
    labels (``alert_id`` None when none was open)."""

    alert_id: int | None
    outcome: str


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def alert_document(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object ``raise_alert(jsonb)`` takes; unknown keys are left for SQL to reject."""
    return {k: _jsonable(v) for k, v in fields.items() if v is not None or k == "labels"}


def _dumps(document: object, where: str) -> str:
    try:
        return json.dumps(document, allow_nan=False)
    except (TypeError, ValueError):
        pass
    # Name the field that is not JSON (NaN, infinity, an object json cannot encode).
    items = document if isinstance(document, list) else [document]
    for i, item in enumerate(items):
        for key, value in item.items() if isinstance(item, dict) else ():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                at = f"alerts[{i}].{key}" if isinstance(document, list) else key
                raise InvalidInput(f"not representable as JSON ({exc})", where=at) from None
    raise InvalidInput("not representable as JSON", where=where)


def raise_alert(conn: psycopg.Connection, **fields: Any) -> RaiseResult:
    """Raise one alert in the caller's transaction.

    Fields: labels, annotations (objects of strings), or the shorthands source (default
    ``api``), operation_type, alert_type, severity, title, description; and details (object),
    partition_start, starts_at, ends_at, generator_url, anomaly_id, correlation_id,
    notify_email, notify_inapp, channels. Invalid input raises ``InvalidInput`` naming the
    field; the transaction is left for the caller to roll back.
    """
    document = _dumps(alert_document(fields), "alert")
    with user_errors("alert"):
        row = conn.execute(query("alerting", "raise_alert"), {"alert": document}).fetchone()
    assert row is not None
    return RaiseResult(None if row[0] is None else int(row[0]), str(row[1]))


def raise_alerts(
    conn: psycopg.Connection, alerts: Sequence[Mapping[str, Any]]
) -> list[RaiseResult]:
    """Raise many alerts in one statement (all or nothing), in order: the same pipeline as
    ``raise_alert``, set-based, which is what makes batches fast. Errors name
    ``alerts[i].field``."""
    if not alerts:
        return []
    params = _batch_params(alerts)
    with user_errors("alerts"):
        rows = conn.execute(query("alerting", "raise_alerts"), params).fetchall()
    return _results(rows)


async def raise_alerts_async(
    conn: psycopg.AsyncConnection[Any], alerts: Sequence[Mapping[str, Any]]
) -> list[RaiseResult]:
    """``raise_alerts`` on an async connection (the HTTP API's, in its event loop)."""
    if not alerts:
        return []
    params = _batch_params(alerts)
    with user_errors("alerts"):
        cur = await conn.execute(query("alerting", "raise_alerts"), params)
        rows = await cur.fetchall()
    return _results(rows)


def _batch_params(alerts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {"alerts": _dumps([alert_document(a) for a in alerts], "alerts")}


def _results(rows: Sequence[tuple[Any, ...]]) -> list[RaiseResult]:
    return [RaiseResult(None if r[0] is None else int(r[0]), str(r[1])) for r in rows]
