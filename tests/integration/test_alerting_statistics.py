"""The raise path analyzes alerts once it has changed by as much as it holds, so the plans every
session keeps are made from statistics of about the table's size (a generic plan made on an empty
table walked it whole as it grew)."""

import psycopg

from alert_delivery.alerting import raise_alerts


def _flush_stats(conn: psycopg.Connection) -> None:
    # A backend reports its table counters at most once a second; the next report is forced.
    conn.execute("SELECT pg_stat_force_next_flush()")


def _analyzed(conn: psycopg.Connection) -> float:
    row = conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = 'alert_delivery.alerts'::regclass"
    ).fetchone()
    assert row is not None
    return float(row[0])


def test_a_table_that_grew_is_analyzed_once(conn: psycopg.Connection) -> None:
    grow = "SELECT alert_delivery.analyze_if_grown('alert_delivery.alerts')"
    assert _analyzed(conn) < 0, "a new database has never analyzed alerts"
    with conn.transaction():
        raise_alerts(conn, [{"labels": {"alertname": "Grow", "n": str(i)}} for i in range(999)])
    _flush_stats(conn)
    assert conn.execute(grow).fetchone() == (False,), "999 changes: not yet"

    with conn.transaction():
        raise_alerts(
            conn, [{"labels": {"alertname": "Grow", "n": str(i)}} for i in range(999, 1300)]
        )
    _flush_stats(conn)
    assert conn.execute(grow).fetchone() == (True,)
    assert _analyzed(conn) >= 1300
    _flush_stats(conn)
    assert conn.execute(grow).fetchone() == (False,), "analyzed: nothing changed since"


def test_raising_analyzes_a_grown_table(conn: psycopg.Connection) -> None:
    with conn.transaction():
        raise_alerts(conn, [{"labels": {"alertname": "Grow", "n": str(i)}} for i in range(1200)])
    _flush_stats(conn)
    with conn.transaction():
        raise_alerts(conn, [{"labels": {"alertname": "After", "n": "1"}}])
    assert _analyzed(conn) >= 1200
