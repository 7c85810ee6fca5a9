"""Alert messages as the channels read them, and their rendered body, for Python callers.

The delivery engine gets the messages with its claim and renders there; this is for everything
else that wants to see a body (tests, tools): ``alert_delivery.alert_messages`` in SQL, rendered
by :func:`alert_delivery.channels.render`, the only formatter.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from alert_delivery.channels import render
from alert_delivery.db.queries import query


def alert_messages(conn: psycopg.Connection[Any], alert_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The messages of ``alert_ids``, in that order; alerts that do not exist are left out."""
    row = conn.execute(
        query("alerting", "alert_messages"), {"alert_ids": list(alert_ids)}
    ).fetchone()
    return list(row[0]) if row and row[0] else []


def render_alerts(
    conn: psycopg.Connection[Any],
    kind: str,
    event: str,
    alert_ids: Sequence[int],
    *,
    at: datetime | None = None,
    runbook_base: str = "",
) -> dict[str, Any]:
    """The body a webhook of ``kind`` would be sent for ``event`` of these alerts."""
    messages = alert_messages(conn, alert_ids)
    return render(kind, event, messages, at or datetime.now(UTC), runbook_base=runbook_base)
