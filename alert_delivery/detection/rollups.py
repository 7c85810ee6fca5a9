"""Hourly rollups per operation: what correlations and trends read instead of raw rows."""

from datetime import datetime, timedelta

import psycopg

from alert_delivery.db import query

HOUR = timedelta(hours=1)


def compute_rollups(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    """Rewrite the rollups of every hour in ``[start, end)`` from raw metrics; rows written."""
    window = {"start": start, "end": end}
    conn.execute(query("detection", "delete_rollups"), window)
    return conn.execute(query("detection", "insert_rollups"), window).rowcount


def ensure_rollups(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    """Compute the rollups of hours in ``[start, end)`` that have none yet; rows written.

    A backfill may run partitions in any order; filling gaps from the same raw rows gives the
    rollups the hour's own partition writes, so results do not depend on the order.
    """
    missing = conn.execute(
        query("detection", "missing_rollup_hours"), {"start": start, "end": end}
    ).fetchall()
    return sum(compute_rollups(conn, hour, hour + HOUR) for (hour,) in missing)
