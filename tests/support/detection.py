"""Helpers for detection tests: synthetic data with known truth, and result snapshots."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alert_delivery.detection.anomalies import detect_anomalies
from alert_delivery.detection.correlations import detect_correlations
from alert_delivery.detection.rows import MetricRow
from alert_delivery.detection.synthetic import Spike, generate_metrics, load_metric_rows

HOUR = timedelta(hours=1)
# A fixed, hour-aligned "now" far from the wall clock: nothing in detection may read the clock.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def load(
    conn: psycopg.Connection,
    *,
    now: datetime = NOW,
    hours: int = 8 * 24,
    rows_per_hour: int = 40,
    operations: int | Sequence[str] = 6,
    seed: int = 1,
    spikes: Sequence[Spike] = (),
) -> int:
    rows = generate_metrics(
        now=now,
        hours=hours,
        rows_per_hour=rows_per_hour,
        operations=operations,
        seed=seed,
        spikes=spikes,
    )
    return load_metric_rows(conn, rows)


def ramp(operation: str, end: datetime, factors: Sequence[float]) -> list[Spike]:
    """One spike per hour before ``end``: ``factors[i]`` multiplies the i-th of those hours."""
    start = end - HOUR * len(factors)
    return [Spike(operation, start + HOUR * i, f) for i, f in enumerate(factors) if f != 1.0]


def by_hour(rows: Iterable[MetricRow]) -> dict[datetime, list[MetricRow]]:
    grouped: dict[datetime, list[MetricRow]] = defaultdict(list)
    for row in rows:
        grouped[row.recorded_at.replace(minute=0, second=0, microsecond=0)].append(row)
    return grouped


def run_partition(conn: psycopg.Connection, start: datetime) -> None:
    detect_anomalies(conn, start, start + HOUR)
    detect_correlations(conn, start, start + HOUR)


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Anomalies and correlations without ids and wall-clock columns, in a stable order."""
    anomalies = conn.execute(
        b"SELECT partition_start, partition_end, operation_type, anomaly_type, severity, z_score,"
        b" p99_ratio, samples, observed_mean_ms, observed_p99_ms, baseline_mean_ms,"
        b" baseline_stddev_ms, baseline_p99_ms, metric_id, duration_ms, baseline_ms"
        b" FROM alert_delivery.anomalies ORDER BY partition_start, operation_type"
    ).fetchall()
    correlations = conn.execute(
        b"SELECT partition_start, window_start, window_end, operation_a, operation_b, pearson_r,"
        b" samples, confidence, both_degraded, bottleneck_type, recommendation"
        b" FROM alert_delivery.correlations ORDER BY partition_start, operation_a, operation_b"
    ).fetchall()
    return {"anomalies": anomalies, "correlations": correlations}
