"""Hourly rollups: exact per-hour statistics, and safe when parallel runs fill the same hour."""

import threading

import psycopg
import pytest

from alert_delivery.detection.rollups import compute_rollups, ensure_rollups
from tests.support.detection import HOUR, NOW, load

LAST = NOW - HOUR


def test_rollups_match_raw_metrics(conn: psycopg.Connection) -> None:
    load(conn, hours=3, rows_per_hour=50, operations=["merge", "commit"])
    assert compute_rollups(conn, NOW - 3 * HOUR, NOW) == 6
    rollup = conn.execute(
        b"SELECT samples, mean_ms, p95_ms, max_ms, success_count + conflict_count + failed_count"
        b" FROM alert_delivery.metric_rollups_hourly WHERE operation_type = 'merge' AND hour = %s",
        (LAST,),
    ).fetchone()
    raw = conn.execute(
        b"SELECT count(*), avg(duration_ms),"
        b" percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms), max(duration_ms)"
        b" FROM alert_delivery.performance_metrics WHERE operation_type = 'merge'"
        b" AND recorded_at >= %s",
        (LAST,),
    ).fetchone()
    assert rollup is not None and raw is not None
    assert rollup[0] == raw[0] == rollup[4] == 50
    assert rollup[1] == pytest.approx(raw[1]) and rollup[2] == raw[2] and rollup[3] == raw[3]
    # Only missing hours are filled.
    conn.execute(b"DELETE FROM alert_delivery.metric_rollups_hourly WHERE hour = %s", (LAST,))
    assert ensure_rollups(conn, NOW - 3 * HOUR, NOW) == 2
    assert ensure_rollups(conn, NOW - 3 * HOUR, NOW) == 0


def test_two_runs_writing_the_same_hour_do_not_collide(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        load(conn, hours=2, rows_per_hour=20, operations=["merge", "commit"])
    errors: list[BaseException] = []
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        compute_rollups(first, LAST, NOW)  # uncommitted: holds the rows

        def other() -> None:
            try:
                compute_rollups(second, LAST, NOW)
                second.commit()
            except BaseException as exc:  # reported to the test thread below
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # waits for the first writer instead of failing
        first.commit()
        thread.join(10)
        assert errors == []
        count = first.execute(
            b"SELECT count(*) FROM alert_delivery.metric_rollups_hourly WHERE hour = %s", (LAST,)
        ).fetchone()
        assert count == (2,)


def test_family_summary_shows_outcome_rates_and_the_trend(conn: psycopg.Connection) -> None:
    day = NOW.replace(hour=0)
    load(conn, now=day + 24 * HOUR, hours=48, rows_per_hour=30, operations=["merge", "rebase"])
    conn.execute(
        b"UPDATE alert_delivery.performance_metrics SET duration_ms = duration_ms * 2,"
        b" status = 'conflict' WHERE recorded_at >= %s AND metric_id %% 4 = 0",
        (day,),
    )
    compute_rollups(conn, day - 24 * HOUR, day + 24 * HOUR)
    rows = conn.execute(
        b"SELECT day, samples, conflict_rate, mean_change_pct"
        b" FROM alert_delivery.operation_family_summary WHERE family = 'merge' ORDER BY day"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(day - 24 * HOUR, 1440), (day, 1440)]
    assert rows[0][3] is None
    assert rows[1][2] > rows[0][2] + 0.2  # a quarter of day two became conflicts
    assert 15 < rows[1][3] < 35  # a quarter of the durations doubled: about +25 %
