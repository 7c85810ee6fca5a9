"""Alerts from detection: the anomalies and bottlenecks of one partition, and auto-resolve.

Reads the ``anomalies`` and ``correlations`` tables (never detection code), raises one alert per
anomaly and per classified bottleneck through the same SQL pipeline as every producer, then
resolves open detection alerts from earlier partitions whose condition no longer shows.
"""

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from alert_delivery.alerting.labels import fingerprint, legacy_labels
from alert_delivery.alerting.lifecycle import release_held, resolve
from alert_delivery.alerting.producer import raise_alert
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

SOURCE = "detection"


@dataclass
class PartitionAlerts:
    """What one partition produced: outcome counts, resolved and released alerts, bad rows."""

    outcomes: Counter[str] = field(default_factory=Counter)
    alert_ids: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    released: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def raised(self) -> int:
        return sum(self.outcomes.values())


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def anomaly_alert(row: dict[str, Any]) -> dict[str, Any]:
    """The alert fields for one ``anomalies`` row (the message structure of the issue)."""
    op, kind = row["operation_type"], row["anomaly_type"]
    z, ratio = _num(row["z_score"]), _num(row["p99_ratio"])
    parts = [f"{op} latency is anomalous ({kind.replace('_', ' ').lower()})"]
    if z is not None:
        parts.append(f"z-score {z:.2f}")
    if ratio is not None:
        parts.append(f"p99 {ratio:.2f}x baseline")
    description = (
        f"{', '.join(parts)}. Observed mean {row['observed_mean_ms']:.1f} ms, p99 "
        f"{row['observed_p99_ms']:.1f} ms against baseline mean {row['baseline_mean_ms']:.1f} ms, "
        f"p99 {row['baseline_p99_ms']:.1f} ms over {row['samples']} samples."
    )
    return {
        "source": SOURCE,
        "operation_type": op,
        "alert_type": kind,
        "severity": row["severity"],
        "title": f"{op}: {kind.replace('_', ' ').lower()} latency anomaly",
        "description": description,
        "partition_start": row["partition_start"],
        # The hour detected, not now(): a backfill of the hour raises the same alert.
        "starts_at": row["partition_start"],
        "anomaly_id": row["anomaly_id"],
        "details": {
            "anomaly_type": kind,
            "z_score": z,
            "p99_ratio": ratio,
            "metric_id": row["metric_id"],
            "duration_ms": _num(row["duration_ms"]),
            "baseline_ms": _num(row["baseline_ms"]),
            "samples": row["samples"],
            "detected_at": _iso(row["detected_at"]),
        },
    }


def bottleneck_alert(row: dict[str, Any]) -> dict[str, Any]:
    """The alert fields for one classified ``correlations`` row."""
    a, b, kind = row["operation_a"], row["operation_b"], row["bottleneck_type"]
    r = _num(row["pearson_r"])
    return {
        "source": SOURCE,
        "operation_type": f"{a}+{b}",
        "alert_type": kind,
        "severity": "CRITICAL" if row["both_degraded"] else "WARNING",
        "title": f"Bottleneck {kind.replace('_', ' ').lower()}: {a} and {b}",
        "description": (
            f"{a} and {b} degrade together (Pearson r {r if r is None else round(r, 3)}, "
            f"{row['samples']} samples, confidence {row['confidence']:.2f}). "
            f"{row['recommendation'] or ''}"
        ).strip(),
        "partition_start": row["partition_start"],
        # The hour detected, not now(): a backfill of the hour raises the same alert.
        "starts_at": row["partition_start"],
        "correlation_id": row["correlation_id"],
        "details": {
            "bottleneck_type": kind,
            "operation_a": a,
            "operation_b": b,
            "pearson_r": r,
            "confidence": _num(row["confidence"]),
            "samples": row["samples"],
            "both_degraded": row["both_degraded"],
            "recommendation": row["recommendation"],
            "detected_at": _iso(row["detected_at"]),
        },
    }


def alerts_from_partition(
    conn: psycopg.Connection, start: datetime, end: datetime
) -> PartitionAlerts:
    """Raise, resolve and release for the partition [start, end) in the caller's transaction.

    Each alert runs in a savepoint so one bad row is reported and the rest still go through.
    """
    result = PartitionAlerts()
    seen: list[str] = []
    with conn.cursor(row_factory=dict_row) as cur:
        anomalies = cur.execute(
            query("alerting", "partition_anomalies"), {"start": start, "end": end}
        ).fetchall()
        bottlenecks = cur.execute(
            query("alerting", "partition_bottlenecks"), {"start": start, "end": end}
        ).fetchall()
    candidates = [anomaly_alert(r) for r in anomalies] + [bottleneck_alert(r) for r in bottlenecks]
    for fields in candidates:
        seen.append(
            fingerprint(
                legacy_labels(
                    SOURCE, fields["operation_type"], fields["alert_type"], fields["severity"]
                )
            )
        )
        try:
            with conn.transaction():
                raised = raise_alert(conn, **fields)
        except InvalidInput as exc:
            result.errors.append(f"{fields['operation_type']}/{fields['alert_type']}: {exc}")
            continue
        result.outcomes[raised.outcome] += 1
        if raised.alert_id is not None:  # detection never sends an end time
            result.alert_ids.append(raised.alert_id)
    stale = conn.execute(
        query("alerting", "stale_detection_alerts"), {"start": start, "seen": seen}
    ).fetchall()
    for (alert_id,) in stale:
        resolve(conn, int(alert_id), by="detection: condition cleared")
        result.resolved.append(int(alert_id))
    result.released = release_held(conn)
    return result
