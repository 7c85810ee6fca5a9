"""Anomalies against synthetic truth: spikes found with the right severity, noise stays quiet."""

import math
from datetime import UTC, datetime
from statistics import NormalDist

import psycopg

from alert_delivery.detection.anomalies import detect_anomalies, reference_window_end
from alert_delivery.detection.synthetic import SIGMA, Spike
from tests.support.detection import HOUR, NOW, load, snapshot

LAST = NOW - HOUR  # the last complete hour before NOW


def test_injected_spikes_are_found_with_the_right_severity(conn: psycopg.Connection) -> None:
    spikes = [
        Spike("merge", LAST, 4.0),
        Spike("commit", LAST, 1.6),
        Spike("branch_create", LAST, 1.25),
    ]
    load(conn, rows_per_hour=100, spikes=spikes)
    result = detect_anomalies(conn, LAST, NOW)
    found = {a.operation_type: (a.anomaly_type, a.severity) for a in result.anomalies}
    assert found == {
        "merge": ("COMBINED", "CRITICAL"),
        "commit": ("COMBINED", "WARNING"),
        "branch_create": ("STATISTICAL", "INFO"),
    }
    assert sorted(result.evaluated) == sorted(
        ["merge", "commit", "branch_create", "object_store_put", "query_cache_lookup", "wal_flush"]
    )
    rows = conn.execute(
        b"SELECT a.operation_type, a.severity, a.metric_id = m.metric_id, a.duration_ms,"
        b" a.baseline_mean_ms < a.observed_mean_ms"
        b" FROM alert_delivery.anomalies a JOIN LATERAL (SELECT metric_id"
        b"   FROM alert_delivery.performance_metrics p WHERE p.operation_type = a.operation_type"
        b"   AND p.recorded_at >= a.partition_start AND p.recorded_at < a.partition_end"
        b"   ORDER BY duration_ms DESC LIMIT 1) m ON true ORDER BY 1"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("branch_create", "INFO", True, True),
        ("commit", "WARNING", True, True),
        ("merge", "CRITICAL", True, True),
    ]


def test_the_spike_does_not_inflate_its_own_baseline(conn: psycopg.Connection) -> None:
    load(conn, rows_per_hour=30, spikes=[Spike("merge", LAST, 4.0)])
    result = detect_anomalies(conn, LAST, NOW)
    (merge,) = result.anomalies
    assert result.baseline_window_end == reference_window_end(LAST) <= LAST
    # Baseline mean near the synthetic median x exp(sigma^2 / 2); the spike is 4x that.
    expected_mean = 180.0 * math.exp(SIGMA**2 / 2)
    assert abs(merge.reference.mean_ms - expected_mean) / expected_mean < 0.03
    assert merge.severity == "CRITICAL"


def test_rematerialising_a_partition_changes_nothing(conn: psycopg.Connection) -> None:
    load(conn, rows_per_hour=30, spikes=[Spike("merge", LAST, 4.0), Spike("commit", LAST, 3.0)])
    detect_anomalies(conn, LAST, NOW)
    first = conn.execute(
        b"SELECT anomaly_id, operation_type, detected_at, xmin::text FROM alert_delivery.anomalies"
        b" ORDER BY 1"
    ).fetchall()
    before = snapshot(conn)
    detect_anomalies(conn, LAST, NOW)
    again = conn.execute(
        b"SELECT anomaly_id, operation_type, detected_at, xmin::text FROM alert_delivery.anomalies"
        b" ORDER BY 1"
    ).fetchall()
    assert len(first) == 2 and again == first
    assert snapshot(conn) == before
    # Data fixed later: the stale anomaly disappears, the other keeps its id.
    conn.execute(
        b"UPDATE alert_delivery.performance_metrics SET duration_ms = duration_ms / 3"
        b" WHERE operation_type = 'commit' AND recorded_at >= %s",
        (LAST,),
    )
    detect_anomalies(conn, LAST, NOW)
    merge_id = next(row[0] for row in first if row[1] == "merge")
    left = conn.execute(b"SELECT anomaly_id, operation_type FROM alert_delivery.anomalies")
    assert left.fetchall() == [(merge_id, "merge")]


def test_stationary_noise_stays_within_the_false_positive_rate(conn: psycopg.Connection) -> None:
    ops, hours, per_hour = 10, 48, 40
    load(conn, hours=9 * 24, rows_per_hour=per_hour, operations=ops, seed=11)
    found = 0
    for k in range(hours, 0, -1):
        start = NOW - HOUR * k
        found += len(detect_anomalies(conn, start, start + HOUR).anomalies)
    # One-sided 3-sigma on the mean, plus one sample beyond 1.5x the log-normal p99.
    normal = NormalDist()
    p_statistical = 1 - normal.cdf(3.0)
    q = 1 - normal.cdf((math.log(1.5) + SIGMA * normal.inv_cdf(0.99)) / SIGMA)
    p_p99 = 1 - (1 - q) ** per_hour
    expected = ops * hours * (p_statistical + p_p99)
    assert found <= expected + 3 * math.sqrt(expected) + 1, (found, expected)


def test_operations_without_history_have_no_baseline(conn: psycopg.Connection) -> None:
    load(conn, hours=3, rows_per_hour=20, operations=["merge"])
    result = detect_anomalies(conn, LAST, NOW)
    assert result.anomalies == [] and result.without_baseline == ["merge"]
    rollups = conn.execute(
        b"SELECT operation_type, hour, samples FROM alert_delivery.metric_rollups_hourly"
    ).fetchall()
    assert rollups == [("merge", LAST, 20)]


def test_views_show_recent_anomalies(conn: psycopg.Connection) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    last = now - HOUR
    load(conn, now=now, rows_per_hour=30, spikes=[Spike("merge", last, 4.0)])
    detect_anomalies(conn, last, now)
    recent = conn.execute(
        b"SELECT operation_type, severity FROM alert_delivery.recent_anomalies"
    ).fetchall()
    assert recent == [("merge", "CRITICAL")]
    details = conn.execute(
        b"SELECT family, mean_ratio > 3, worst_duration_ms, worst_status IS NOT NULL"
        b" FROM alert_delivery.anomaly_details"
    ).fetchone()
    worst = conn.execute(
        b"SELECT max(duration_ms) FROM alert_delivery.performance_metrics"
        b" WHERE operation_type = 'merge' AND recorded_at >= %s",
        (last,),
    ).fetchone()
    assert worst is not None and details == ("merge", True, worst[0], True)
    family = conn.execute(
        b"SELECT samples, success_count + conflict_count + failed_count, success_rate,"
        b" success_count::float8 / samples"
        b" FROM alert_delivery.operation_family_summary WHERE family = 'merge'"
    ).fetchall()
    assert len(family) == 1 and family[0][0] == family[0][1] == 30
    assert family[0][2] == family[0][3]
