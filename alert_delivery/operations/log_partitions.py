"""delivery_log's daily partitions: create the coming days, drop the days past retention.

The SQL is ``sql/functions/10_partitions.sql``; the Dagster schedule ``log_partitions``
(``alert_delivery/defs/operations.py``) calls ``maintain`` once a day when
``alert_delivery.operations.due.log_partitions_due`` says so.
Creating and dropping run in separate transactions: dropping takes a short ACCESS EXCLUSIVE lock
on ``delivery_log`` (writers wait for it), bounded by ``lock_timeout``, so a long reader makes
the drop fail and retry the next day rather than stall every writer behind it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from alert_delivery.db.connection import connect

DAYS_AHEAD = 7
"""Daily partitions kept ready beyond today (the migration creates the same)."""
DROP_LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class LogPartition:
    name: str
    lower_bound: datetime | None
    """``None``: from MINVALUE (``delivery_log_history``) or the default partition."""
    upper_bound: datetime | None
    """``None``: the default partition."""


@dataclass(frozen=True)
class PartitionChanges:
    created: tuple[str, ...]
    dropped: tuple[str, ...]


def list_partitions(conn: psycopg.Connection) -> list[LogPartition]:
    rows = conn.execute(
        b"SELECT name, lower_bound, upper_bound FROM alert_delivery.log_partitions()"
    ).fetchall()
    return [LogPartition(str(n), lo, hi) for n, lo, hi in rows]


def retention(days: int) -> timedelta:
    return timedelta(days=days)


def ensure(conn: psycopg.Connection, ahead: int = DAYS_AHEAD) -> list[str]:
    """Create the missing daily partitions of today and the next ``ahead`` days."""
    rows = conn.execute(b"SELECT * FROM alert_delivery.ensure_log_partitions(%s)", (ahead,))
    return [str(r[0]) for r in rows.fetchall()]


def drop_expired(conn: psycopg.Connection, retention_days: int) -> list[str]:
    """Detach and drop the partitions whose rows are all older than ``retention_days``."""
    conn.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'".encode())
    rows = conn.execute(
        b"SELECT * FROM alert_delivery.drop_expired_log_partitions(%s)",
        (retention(retention_days),),
    )
    return [str(r[0]) for r in rows.fetchall()]


def maintain(url: str, retention_days: int, ahead: int = DAYS_AHEAD) -> PartitionChanges:
    """Create upcoming partitions, then drop expired ones, each in its own transaction."""
    with connect(url) as conn:
        created = ensure(conn, ahead)
    with connect(url) as conn:
        dropped = drop_expired(conn, retention_days)
    return PartitionChanges(tuple(created), tuple(dropped))
