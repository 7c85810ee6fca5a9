"""Alert lifecycle: firing -> acknowledged -> resolved, and releasing held alerts.

Each call runs the PL/pgSQL function of the same name (sql/functions/06_lifecycle.sql), which
also enqueues the acknowledge / resolve notices for the webhooks that received the trigger.
"""

from dataclasses import dataclass
from datetime import datetime

import psycopg

from alert_delivery.alerting.sqlerrors import user_errors
from alert_delivery.db import query


def acknowledge(conn: psycopg.Connection, alert_id: int, *, by: str = "unknown") -> int:
    """Acknowledge a firing alert; returns how many notifications were enqueued."""
    with user_errors("alert_id"):
        row = conn.execute(
            query("alerting", "acknowledge_alert"), {"alert_id": alert_id, "by": by}
        ).fetchone()
    return int(row[0]) if row else 0


def resolve(conn: psycopg.Connection, alert_id: int, *, by: str = "api") -> int:
    """Resolve an open alert; returns how many resolve notifications were enqueued."""
    with user_errors("alert_id"):
        row = conn.execute(
            query("alerting", "resolve_alert"), {"alert_id": alert_id, "by": by}
        ).fetchone()
    return int(row[0]) if row else 0


def release_held(conn: psycopg.Connection) -> int:
    """Notify held (silenced or inhibited) alerts that still fire and are no longer covered.

    The hourly ``alerts`` asset and the escalation schedule call it; expiring a silence does too.
    """
    row = conn.execute(query("alerting", "release_held")).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class AlertRow:
    alert_id: int
    severity: str
    status: str
    operation_type: str
    alert_type: str
    title: str
    occurrences: int
    held_reason: str | None
    created_at: datetime
    acknowledged_by: str | None
    resolved_at: datetime | None
    source: str
    last_seen_at: datetime
    labels: dict[str, str]


def list_alerts(
    conn: psycopg.Connection, *, status: str | None = None, limit: int = 50
) -> list[AlertRow]:
    rows = conn.execute(
        query("alerting", "list_alerts"), {"status": status, "limit": limit}
    ).fetchall()
    return [AlertRow(*row) for row in rows]
