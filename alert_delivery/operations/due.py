"""Is there work? The due-checks behind the Dagster schedules and sensors (no Dagster here).

Each is one cheap query (``sql/queries/due.sql``) mirroring the condition of the work it guards,
so a tick with nothing to do launches no run and every run in the history did something.
"""

from dataclasses import dataclass
from datetime import datetime

import psycopg

from alert_delivery.db.queries import query
from alert_delivery.escalation import EscalationPolicy

HEARTBEAT_STALE_S = 30.0
"""A worker whose heartbeat is older than this is not live (as ``delivery.sensing``)."""


@dataclass(frozen=True)
class DueRange:
    rows: int
    first_id: int | None
    last_id: int | None


def _flag(conn: psycopg.Connection, name: str, params: dict[str, object]) -> bool:
    row = conn.execute(query("due", name), params).fetchone()
    return bool(row and row[0])


def detection_due(conn: psycopg.Connection, start: datetime, end: datetime) -> bool:
    """Metrics were recorded in [start, end)."""
    return _flag(conn, "detection_due", {"start": start, "end": end})


def baselines_due(conn: psycopg.Connection, start: datetime, end: datetime) -> bool:
    """The baseline window [start, end) holds metrics."""
    return _flag(conn, "baselines_due", {"start": start, "end": end})


def live_worker(conn: psycopg.Connection, stale_s: float = HEARTBEAT_STALE_S) -> bool:
    row = conn.execute(query("due", "live_workers"), {"stale_s": stale_s}).fetchone()
    return bool(row and row[0])


def retries_due(conn: psycopg.Connection, min_age_s: float = 0.0) -> DueRange:
    """Failed rows whose next attempt is due, and rows whose lease expired."""
    row = conn.execute(query("due", "retries_due"), {"min_age_s": min_age_s}).fetchone()
    assert row is not None
    return DueRange(int(row[0]), row[1], row[2])


def escalation_due(conn: psycopg.Connection, policy: EscalationPolicy | None = None) -> bool:
    """The escalate job would release, stop, open or send something."""
    p = policy or EscalationPolicy()
    return _flag(
        conn,
        "escalation_due",
        {"stale_after_s": p.stale_after_s, "dead_after_attempts": p.dead_after_attempts},
    )


def reports_due(conn: psycopg.Connection, start: datetime, end: datetime) -> bool:
    """Something was logged or raised in [start, end): the hour's reports have news."""
    return _flag(conn, "reports_due", {"start": start, "end": end})


def escalation_report_due(conn: psycopg.Connection, since: datetime) -> bool:
    return _flag(conn, "escalation_report_due", {"since": since})


def log_partitions_due(conn: psycopg.Connection, retention_days: int, ahead: int) -> bool:
    """A delivery_log partition has expired, or an upcoming day has no partition yet."""
    return _flag(conn, "log_partitions_due", {"retention_days": retention_days, "ahead": ahead})
