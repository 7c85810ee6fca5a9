"""Anomaly detection for one partition ``[start, end)``: statistical, P99 degradation, combined.

The result depends only on the partition bounds and the stored metrics, never on the clock: the
reference is the baseline version whose window ends at the start of the partition's UTC day
(computed from raw metrics when missing). Re-running a partition leaves unchanged rows untouched.
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from alert_delivery.db import query
from alert_delivery.detection.rollups import compute_rollups
from alert_delivery.detection.settings import AnomalySettings


@dataclass(frozen=True)
class Observed:
    operation_type: str
    samples: int
    mean_ms: float
    p99_ms: float
    worst_metric_id: int
    worst_ms: float


@dataclass(frozen=True)
class Reference:
    mean_ms: float
    stddev_ms: float
    p99_ms: float
    samples: int


@dataclass(frozen=True)
class Anomaly:
    operation_type: str
    anomaly_type: str
    severity: str
    z_score: float | None
    p99_ratio: float | None
    observed: Observed
    reference: Reference


@dataclass
class DetectionResult:
    partition_start: datetime
    partition_end: datetime
    baseline_window_end: datetime
    anomalies: list[Anomaly] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    without_baseline: list[str] = field(default_factory=list)
    rollups: int = 0

    def count(self, severity: str) -> int:
        return sum(1 for a in self.anomalies if a.severity == severity)


def reference_window_end(partition_start: datetime) -> datetime:
    """The start of the partition's UTC day: the end of the baseline window it is judged by."""
    return partition_start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def classify(observed: Observed, ref: Reference, settings: AnomalySettings) -> Anomaly | None:
    """The anomaly this partition shows against ``ref``, or ``None``. Slowdowns only."""
    if observed.samples < settings.min_samples or ref.mean_ms <= 0:
        return None
    z = None
    if ref.stddev_ms > 0:
        z = (observed.mean_ms - ref.mean_ms) / (ref.stddev_ms / math.sqrt(observed.samples))
    mean_ratio = observed.mean_ms / ref.mean_ms
    p99_ratio = observed.p99_ms / ref.p99_ms if ref.p99_ms > 0 else None
    statistical = z is not None and z >= settings.z_threshold
    statistical = statistical and mean_ratio >= settings.min_mean_ratio
    degraded = p99_ratio is not None and p99_ratio >= settings.p99_ratio_threshold
    if not (statistical or degraded):
        return None
    kind = (
        "COMBINED"
        if statistical and degraded
        else "STATISTICAL"
        if statistical
        else "P99_DEGRADATION"
    )
    size = max(mean_ratio, p99_ratio or 0.0)
    severity = (
        "CRITICAL"
        if size >= settings.critical_ratio
        else "WARNING"
        if size >= settings.warning_ratio
        else "INFO"
    )
    return Anomaly(observed.operation_type, kind, severity, z, p99_ratio, observed, ref)


def reference_baselines(
    conn: psycopg.Connection, partition_start: datetime, ops: list[str], settings: AnomalySettings
) -> dict[str, Reference]:
    end = reference_window_end(partition_start)
    days = settings.baseline_window_days
    params = {"end": end, "days": days, "ops": ops}
    found = {r[0]: r for r in conn.execute(query("detection", "baseline_versions_for"), params)}
    missing = [op for op in ops if op not in found]
    if missing:
        conn.execute(
            query("detection", "compute_baseline_versions"),
            params | {"ops": missing, "start": end - timedelta(days=days), "min_samples": 10},
        )
        params["ops"] = missing
        found |= {
            r[0]: r for r in conn.execute(query("detection", "baseline_versions_for"), params)
        }
    return {
        op: Reference(float(mean), float(stddev), float(p99), int(n))
        for op, mean, stddev, p99, n in found.values()
    }


def _observed(conn: psycopg.Connection, start: datetime, end: datetime) -> list[Observed]:
    rows = conn.execute(query("detection", "partition_stats"), {"start": start, "end": end})
    return [
        Observed(op, int(n), float(m), float(p), int(mid), float(w)) for op, n, m, p, mid, w in rows
    ]


def _store(conn: psycopg.Connection, result: DetectionResult) -> None:
    for a in result.anomalies:
        conn.execute(
            query("detection", "upsert_anomaly"),
            {
                "start": result.partition_start,
                "end": result.partition_end,
                "op": a.operation_type,
                "type": a.anomaly_type,
                "severity": a.severity,
                "z": a.z_score,
                "ratio": a.p99_ratio,
                "samples": a.observed.samples,
                "mean": a.observed.mean_ms,
                "p99": a.observed.p99_ms,
                "b_mean": a.reference.mean_ms,
                "b_stddev": a.reference.stddev_ms,
                "b_p99": a.reference.p99_ms,
                "metric_id": a.observed.worst_metric_id,
                "duration": a.observed.worst_ms,
            },
        )
    conn.execute(
        query("detection", "delete_stale_anomalies"),
        {"start": result.partition_start, "ops": [a.operation_type for a in result.anomalies]},
    )


def detect_anomalies(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    settings: AnomalySettings | None = None,
) -> DetectionResult:
    """Detect, store (idempotent upsert) and return the anomalies of ``[start, end)``.

    Also rewrites the partition's hourly rollups. The caller owns the transaction.
    """
    settings = settings or AnomalySettings()
    result = DetectionResult(start, end, reference_window_end(start))
    # One transaction (a savepoint inside the caller's): readers never see half a partition.
    with conn.transaction():
        result.rollups = compute_rollups(conn, start, end)
        observed = _observed(conn, start, end)
        refs = reference_baselines(conn, start, [o.operation_type for o in observed], settings)
        for obs in observed:
            ref = refs.get(obs.operation_type)
            if ref is None:
                result.without_baseline.append(obs.operation_type)
                continue
            result.evaluated.append(obs.operation_type)
            found = classify(obs, ref, settings)
            if found is not None:
                result.anomalies.append(found)
        _store(conn, result)
    return result
