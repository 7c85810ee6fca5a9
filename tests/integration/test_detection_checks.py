"""The data-quality checks behind the asset checks fail when the data is wrong."""

from datetime import UTC, datetime, timedelta

import psycopg

from alert_delivery.detection import checks
from alert_delivery.detection.anomalies import detect_anomalies
from alert_delivery.detection.synthetic import Spike
from tests.support.detection import HOUR, NOW, load

LAST = NOW - HOUR


def test_future_metrics_fail_the_check(conn: psycopg.Connection) -> None:
    assert checks.no_future_timestamps(conn).passed
    # Plain SQL bypasses the loader's validation, which is what the check is for.
    conn.execute(
        b"INSERT INTO alert_delivery.performance_metrics (operation_type, duration_ms,"
        b" recorded_at) VALUES ('merge', 1, %s)",
        (datetime.now(UTC) + timedelta(hours=2),),
    )
    outcome = checks.no_future_timestamps(conn)
    assert not outcome.passed and outcome.description == "1 future metrics"


def test_anomalies_must_point_at_a_metric_of_their_hour(conn: psycopg.Connection) -> None:
    load(conn, rows_per_hour=20, spikes=[Spike("merge", LAST, 4.0)])
    detect_anomalies(conn, LAST, NOW)
    assert checks.anomalies_reference_metrics(conn, LAST).passed
    conn.execute(b"UPDATE alert_delivery.anomalies SET metric_id = -1")
    outcome = checks.anomalies_reference_metrics(conn, LAST)
    assert not outcome.passed and outcome.offenders == ("merge",)


def test_baseline_checks(conn: psycopg.Connection) -> None:
    assert checks.percentile_ordering(conn).passed and checks.minimum_samples(conn).passed
    conn.execute(
        b"INSERT INTO alert_delivery.baselines (operation_type, p50_ms, p95_ms, p99_ms, mean_ms,"
        b" stddev_ms, samples, window_start, window_end, window_days)"
        b" VALUES ('merge', 1, 2, 3, 2, 1, 12, now() - interval '7 days', now(), 7)"
    )
    assert checks.minimum_samples(conn, 10).passed
    outcome = checks.minimum_samples(conn, 20)
    assert not outcome.passed and outcome.offenders == ("merge",)
    # The table's own CHECK keeps percentiles ordered; the asset check reports if that ever
    # changes (a later migration dropping it, a restored dump).
    conn.execute(b"ALTER TABLE alert_delivery.baselines DROP CONSTRAINT baselines_check")
    conn.execute(b"UPDATE alert_delivery.baselines SET p95_ms = 9")
    outcome = checks.percentile_ordering(conn)
    assert not outcome.passed and outcome.offenders == ("merge",)
