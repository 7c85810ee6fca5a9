"""Baseline recalculation on a real database: windows, history, runs, budget and failures."""

import itertools
from datetime import timedelta

import psycopg
import pytest

from alert_delivery.alerting.from_detection import alerts_from_partition
from alert_delivery.detection.baselines import ALERT_TYPE, recalculate_baselines
from alert_delivery.detection.settings import BaselineSettings
from alert_delivery.errors import InvalidInput
from tests.support.detection import HOUR, NOW, load

OPS = ["merge", "commit", "branch_create", "object_store_put"]


def recalc_alerts(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        b"SELECT alert_id, source, operation_type, severity, status, occurrences, title,"
        b" description, payload FROM alert_delivery.alerts WHERE alert_type = %s ORDER BY 1",
        (ALERT_TYPE,),
    ).fetchall()


def run_record(conn: psycopg.Connection, run_id: int) -> tuple[object, ...] | None:
    return conn.execute(
        b"SELECT status, operations, updated, kept, skipped, failed, errors"
        b" FROM alert_delivery.baseline_runs WHERE run_id = %s",
        (run_id,),
    ).fetchone()


def baselines(conn: psycopg.Connection) -> dict[str, tuple[float, ...]]:
    rows = conn.execute(
        b"SELECT operation_type, samples, p50_ms, p95_ms, p99_ms, mean_ms, stddev_ms"
        b" FROM alert_delivery.baselines"
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_baselines_match_the_window_and_record_the_run(conn: psycopg.Connection) -> None:
    load(conn, hours=10 * 24, rows_per_hour=5, operations=OPS)
    run = recalculate_baselines(conn, window_end=NOW)
    assert run.status == "succeeded" and sorted(run.updated) == sorted(OPS)
    got = baselines(conn)
    expected = conn.execute(
        b"SELECT operation_type, count(*),"
        b" percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms), avg(duration_ms)"
        b" FROM alert_delivery.performance_metrics"
        b" WHERE recorded_at >= %s AND recorded_at < %s GROUP BY 1",
        (NOW - timedelta(days=7), NOW),
    ).fetchall()
    for op, n, p99, mean in expected:
        assert got[op][0] == n == 7 * 24 * 5
        assert got[op][3] == pytest.approx(p99)
        assert got[op][4] == pytest.approx(mean)
        assert got[op][1] <= got[op][2] <= got[op][3]
    record = conn.execute(
        b"SELECT status, operations, updated, kept, skipped, failed, errors, finished_at >="
        b" started_at, window_days FROM alert_delivery.baseline_runs WHERE run_id = %s",
        (run.run_id,),
    ).fetchone()
    assert record == ("succeeded", 4, 4, 0, 0, 0, [], True, 7)
    versions = conn.execute(
        b"SELECT count(*) FROM alert_delivery.baseline_versions WHERE window_end = %s", (NOW,)
    ).fetchone()
    assert versions == (4,)
    assert run.alert is None and recalc_alerts(conn) == []


def test_empty_metrics_fail_the_run_and_raise_one_alert(conn: psycopg.Connection) -> None:
    run = recalculate_baselines(conn, window_end=NOW)
    assert run.status == "failed" and run.operations == 0 and run.updated == []
    record = run_record(conn, run.run_id)
    assert record is not None and record[:6] == ("failed", 0, 0, 0, 0, 0)
    (error,) = record[6]
    assert "performance_metrics is empty" in error["reason"]
    (stored,) = recalc_alerts(conn)
    assert run.alert is not None and run.alert.alert_id == stored[0]
    assert stored[1:6] == ("detection", "baselines", "WARNING", "firing", 1)
    assert "Baseline recalculation failed: 0 updated" in str(stored[6])
    assert f"Baseline run {run.run_id} " in str(stored[7])
    # The next failing run is the same open alert, counted, not a second one.
    again = recalculate_baselines(conn, window_end=NOW + timedelta(days=1))
    assert again.alert is not None and again.alert.alert_id == run.alert.alert_id
    assert [row[5] for row in recalc_alerts(conn)] == [2]


def test_too_few_samples_everywhere_is_a_failed_run(conn: psycopg.Connection) -> None:
    load(conn, hours=8 * 24, rows_per_hour=2, operations=["merge", "commit"])
    conn.execute(b"DELETE FROM alert_delivery.performance_metrics WHERE metric_id % 50 <> 0")
    run = recalculate_baselines(conn, window_end=NOW)
    assert run.status == "failed" and sorted(run.kept) == ["commit", "merge"]
    record = run_record(conn, run.run_id)
    assert record is not None and record[:6] == ("failed", 2, 0, 2, 0, 0)
    (stored,) = recalc_alerts(conn)
    assert "0 updated, 2 kept" in str(stored[6]) and "samples < 10" in str(stored[7])


def test_hourly_detection_alerts_leave_the_baseline_alert_open(conn: psycopg.Connection) -> None:
    run = recalculate_baselines(conn, window_end=NOW - timedelta(days=1))
    assert run.alert is not None
    # Auto-resolve clears detection alerts of earlier partitions: this one has no partition.
    alerts_from_partition(conn, NOW, NOW + HOUR)
    assert [row[4] for row in recalc_alerts(conn)] == ["firing"]


def test_history_rows_carry_the_percent_change(conn: psycopg.Connection) -> None:
    load(conn, hours=9 * 24, rows_per_hour=5, operations=OPS)
    recalculate_baselines(conn, window_end=NOW - timedelta(days=1))
    before = baselines(conn)
    conn.execute(b"UPDATE alert_delivery.performance_metrics SET duration_ms = duration_ms * 2")
    run = recalculate_baselines(conn, window_end=NOW)
    after = baselines(conn)
    rows = conn.execute(
        b"SELECT operation_type, old_p99_ms, new_p99_ms, p99_change_pct, mean_change_pct"
        b" FROM alert_delivery.baseline_history WHERE run_id = %s",
        (run.run_id,),
    ).fetchall()
    assert len(rows) == len(OPS)
    for op, old_p99, new_p99, p99_pct, mean_pct in rows:
        assert old_p99 == before[op][3] and new_p99 == after[op][3]
        assert p99_pct == pytest.approx(100 * (new_p99 - old_p99) / old_p99)
        assert 80 < mean_pct < 120  # doubled durations, a window shifted by one day


def test_too_few_samples_keep_the_previous_baseline(conn: psycopg.Connection) -> None:
    load(conn, hours=8 * 24, rows_per_hour=2, operations=["merge", "commit"])
    recalculate_baselines(conn, window_end=NOW)
    kept = baselines(conn)["commit"]
    conn.execute(
        b"DELETE FROM alert_delivery.performance_metrics WHERE operation_type = 'commit'"
        b" AND metric_id % 50 <> 0"
    )
    conn.execute(
        b"INSERT INTO alert_delivery.performance_metrics (operation_type, duration_ms,"
        b" recorded_at) VALUES ('tag_create', 3, %s)",
        (NOW - timedelta(hours=2),),
    )
    run = recalculate_baselines(conn, window_end=NOW)
    assert run.status == "succeeded" and run.alert is None
    assert sorted(run.kept) == ["commit", "tag_create"] and run.updated == ["merge"]
    assert baselines(conn)["commit"] == kept
    assert "tag_create" not in baselines(conn)
    reasons = {e["operation"]: e["reason"] for e in run.errors}
    assert "< 10; kept the previous baseline" in reasons["commit"]
    assert reasons["tag_create"] == "1 samples < 10; no baseline yet"
    stored = conn.execute(
        b"SELECT kept, errors FROM alert_delivery.baseline_runs WHERE run_id = %s", (run.run_id,)
    ).fetchone()
    assert stored is not None and stored[0] == 2 and len(stored[1]) == 2


def test_one_failing_operation_does_not_stop_the_others(conn: psycopg.Connection) -> None:
    load(conn, hours=8 * 24, rows_per_hour=2, operations=OPS)
    # A real database failure for one operation only.
    conn.execute(
        b"CREATE FUNCTION alert_delivery.refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        b" BEGIN IF NEW.operation_type = 'commit' THEN RAISE EXCEPTION 'disk full for commit';"
        b" END IF; RETURN NEW; END $$"
    )
    conn.execute(
        b"CREATE TRIGGER refuse BEFORE INSERT ON alert_delivery.baselines"
        b" FOR EACH ROW EXECUTE FUNCTION alert_delivery.refuse()"
    )
    run = recalculate_baselines(conn, window_end=NOW)
    assert run.failed == ["commit"] and len(run.updated) == 3
    assert run.status == "partial"
    assert run.errors == [{"operation": "commit", "reason": "disk full for commit"}]
    assert "commit" not in baselines(conn) and len(baselines(conn)) == 3
    history = conn.execute(b"SELECT count(*) FROM alert_delivery.baseline_history").fetchone()
    assert history == (3,)
    (stored,) = recalc_alerts(conn)
    assert "partial: 3 updated" in str(stored[6]) and "disk full for commit" in str(stored[7])


def test_every_upsert_failing_is_a_failed_run(conn: psycopg.Connection) -> None:
    load(conn, hours=8 * 24, rows_per_hour=2, operations=OPS)
    conn.execute(
        b"CREATE FUNCTION alert_delivery.refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        b" BEGIN RAISE EXCEPTION 'disk full'; END $$"
    )
    conn.execute(
        b"CREATE TRIGGER refuse BEFORE INSERT ON alert_delivery.baselines"
        b" FOR EACH ROW EXECUTE FUNCTION alert_delivery.refuse()"
    )
    run = recalculate_baselines(conn, window_end=NOW)
    assert run.status == "failed" and sorted(run.failed) == sorted(OPS)
    record = run_record(conn, run.run_id)
    assert record is not None and record[:6] == ("failed", 4, 0, 0, 0, 4)
    (stored,) = recalc_alerts(conn)
    assert "failed: 0 updated, 0 kept, 0 skipped, 4 failed of 4" in str(stored[6])


def test_time_budget_skips_the_remaining_operations(conn: psycopg.Connection) -> None:
    load(conn, hours=8 * 24, rows_per_hour=2, operations=OPS)
    ticks = itertools.count()
    run = recalculate_baselines(
        conn,
        window_end=NOW,
        settings=BaselineSettings(time_budget_s=2.5),
        clock=lambda: float(next(ticks)),
    )
    # clock reads: start 0, statistics 1, first operation 2, second 3 (>= 2.5: skip the rest)
    assert len(run.updated) == 1 and len(run.skipped) == 3
    assert run.status == "partial"
    assert "time budget of 2.5 s used up" in run.errors[-1]["reason"]
    stored = conn.execute(
        b"SELECT status, updated, skipped FROM alert_delivery.baseline_runs WHERE run_id = %s",
        (run.run_id,),
    ).fetchone()
    assert stored == ("partial", 1, 3)


def test_window_outside_range_is_refused_before_touching_data(conn: psycopg.Connection) -> None:
    with pytest.raises(InvalidInput, match="between 1 and 365"):
        recalculate_baselines(conn, window_end=NOW, settings=BaselineSettings(window_days=400))
    assert conn.execute(b"SELECT count(*) FROM alert_delivery.baseline_runs").fetchone() == (0,)


def test_budget_spent_while_computing_statistics_skips_everything(
    conn: psycopg.Connection,
) -> None:
    load(conn, hours=8 * 24, rows_per_hour=60, operations=OPS)
    # Reads: start 0, then 59.999 when the statistics query starts, leaving it 1 ms.
    reads = iter([0.0, 59.999])
    run = recalculate_baselines(conn, window_end=NOW, clock=lambda: next(reads, 60.0))
    assert run.updated == [] and sorted(run.skipped) == sorted(OPS)
    assert run.status == "failed"
    assert "time budget of 60 s used up" in run.errors[0]["reason"]
    assert baselines(conn) == {}
    # The timeout was local to the statistics query.
    assert conn.execute(b"SHOW statement_timeout").fetchone() == ("0",)
