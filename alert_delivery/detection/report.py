"""Markdown for the Dagster UI: the top anomalies of a partition, baselines, bottlenecks."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alert_delivery.db import query
from alert_delivery.detection.correlations import Correlation

_BARS = "▁▂▃▄▅▆▇█"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def sparkline(values: Sequence[float]) -> str:
    """A one-line plot: enough to see a spike or a ramp in a table cell."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_BARS[min(7, int((v - low) / span * 8))] for v in values)


def top_anomalies_markdown(
    conn: psycopg.Connection, partition_start: datetime, limit: int = 10
) -> str:
    rows = conn.execute(query("detection", "partition_anomalies"), {"start": partition_start})
    found = rows.fetchall()[:limit]
    if not found:
        return "No anomalies in this partition."
    trends = _trends(conn, [str(r[0]) for r in found], partition_start)
    table = [
        (op, sev, kind, z, ratio, n, mean, b_mean, p99, b_p99, sparkline(trends.get(op, [])))
        for op, kind, sev, z, ratio, n, mean, p99, b_mean, b_p99 in found
    ]
    headers = (
        "operation",
        "severity",
        "type",
        "z",
        "p99 ratio",
        "n",
        "mean ms",
        "baseline mean",
        "p99 ms",
        "baseline p99",
        "hourly mean, last 24 h",
    )
    return markdown_table(headers, table)


def _trends(
    conn: psycopg.Connection, ops: list[str], partition_start: datetime
) -> dict[str, list[float]]:
    window = {
        "ops": ops,
        "start": partition_start - timedelta(hours=23),
        "end": partition_start + timedelta(hours=1),
    }
    trends: dict[str, list[float]] = {}
    for op, _hour, mean in conn.execute(query("detection", "rollup_trend"), window):
        trends.setdefault(str(op), []).append(float(mean))
    return trends


def baselines_markdown(conn: psycopg.Connection) -> str:
    rows = conn.execute(query("detection", "baseline_table")).fetchall()
    headers = ("operation", "samples", "p50 ms", "p95 ms", "p99 ms", "mean ms", "stddev ms")
    return markdown_table(headers, rows) if rows else "No baselines yet."


def bottlenecks_markdown(pairs: Sequence[Correlation], limit: int = 10) -> str:
    strong = sorted(pairs, key=lambda c: (-c.pearson_r, c.operation_a, c.operation_b))[:limit]
    if not strong:
        return "No strong correlations in this window."
    headers = ("pair", "r", "n", "confidence", "both degraded", "bottleneck")
    rows = [
        (
            f"{c.operation_a} ~ {c.operation_b}",
            c.pearson_r,
            c.samples,
            c.confidence,
            c.both_degraded,
            c.bottleneck_type,
        )
        for c in strong
    ]
    return markdown_table(headers, rows)
