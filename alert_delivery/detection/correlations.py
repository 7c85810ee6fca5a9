"""Pearson correlation of every pair of operations over a lookback window of hourly rollups.

The series of an operation is its hourly p95 over ``[partition_end - lookback, partition_end)``;
a pair is compared on the hours both have. Pairs with r >= ``strong_r`` whose operations both
degraded in the partition (a WARNING or CRITICAL anomaly) get a bottleneck type.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

import numpy as np
import psycopg

from alert_delivery.db import query
from alert_delivery.detection.bottlenecks import DEFAULT_FAMILIES, classify_pair
from alert_delivery.detection.rollups import ensure_rollups
from alert_delivery.detection.settings import CorrelationSettings


@dataclass(frozen=True)
class Correlation:
    operation_a: str
    operation_b: str
    pearson_r: float
    samples: int
    confidence: float
    both_degraded: bool
    bottleneck_type: str | None
    recommendation: str | None


@dataclass
class CorrelationResult:
    partition_start: datetime
    window_start: datetime
    window_end: datetime
    strong_r: float
    """The run's ``CorrelationSettings.strong_r``: what ``strong`` and the bottlenecks used."""
    pairs: list[Correlation] = field(default_factory=list)
    operations: int = 0

    @property
    def strong(self) -> list[Correlation]:
        return [c for c in self.pairs if c.pearson_r >= self.strong_r]

    @property
    def bottlenecks(self) -> list[Correlation]:
        return [c for c in self.pairs if c.bottleneck_type is not None]


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson r, or ``None`` when either series is constant or shorter than two points."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def confidence(r: float, n: int) -> float:
    """1 - two-sided p-value of r != 0 (Fisher z transform); 0 when n < 4."""
    if n < 4:
        return 0.0
    z = math.atanh(min(abs(r), 0.999999)) * math.sqrt(n - 3)
    return math.erf(z / math.sqrt(2))


def _complete_matrix(series: dict[str, dict[datetime, float]]) -> dict[tuple[str, str], float]:
    """r of every pair of operations present in every hour, in one vectorised pass (NaN when a
    series is constant); the common case, and 20x faster than pair by pair."""
    hours = sorted(set().union(*series.values())) if series else []
    names = [op for op in sorted(series) if len(series[op]) == len(hours)]
    if len(names) < 2 or len(hours) < 3:
        return {}
    matrix = np.array([[series[op][h] for h in hours] for op in names], dtype=np.float64)
    with np.errstate(all="ignore"):
        r = np.atleast_2d(np.corrcoef(matrix))
    return {
        (a, b): float(r[i, j]) for i, a in enumerate(names) for j, b in enumerate(names) if i < j
    }


def correlate(
    series: dict[str, dict[datetime, float]],
    degraded: set[str],
    settings: CorrelationSettings,
) -> list[Correlation]:
    """Every pair (a < b) with at least ``min_samples`` common hours and a defined r."""
    families = settings.families or DEFAULT_FAMILIES
    fast = _complete_matrix(series)
    found = []
    for a, b in combinations(sorted(series), 2):
        sa, sb = series[a], series[b]
        if (a, b) in fast:
            n = len(sa)
            value = fast[(a, b)]
            r = None if math.isnan(value) else max(-1.0, min(1.0, value))
        else:
            common = sorted(sa.keys() & sb.keys())
            n = len(common)
            r = pearson([sa[h] for h in common], [sb[h] for h in common])
        if n < settings.min_samples or r is None:
            continue
        both = a in degraded and b in degraded
        strong = both and r >= settings.strong_r
        kind, text = classify_pair(a, b, families) if strong else (None, None)
        found.append(Correlation(a, b, r, n, confidence(r, n), both, kind, text))
    return found


def detect_correlations(
    conn: psycopg.Connection,
    partition_start: datetime,
    partition_end: datetime,
    settings: CorrelationSettings | None = None,
) -> CorrelationResult:
    """Correlate, store (idempotent upsert, stale pairs removed) and return the partition's pairs.

    Reads the partition's anomalies (run ``detect_anomalies`` first). The caller owns the
    transaction.
    """
    settings = settings or CorrelationSettings()
    window_start = partition_end - timedelta(hours=settings.lookback_hours)
    result = CorrelationResult(partition_start, window_start, partition_end, settings.strong_r)
    with conn.transaction():
        ensure_rollups(conn, window_start, partition_end)
        series: dict[str, dict[datetime, float]] = {}
        window = {"start": window_start, "end": partition_end}
        for op, hour, p95 in conn.execute(query("detection", "rollup_series"), window):
            series.setdefault(op, {})[hour] = float(p95)
        degraded = {
            str(r[0])
            for r in conn.execute(
                query("detection", "degraded_operations"), {"start": partition_start}
            )
        }
        result.operations = len(series)
        result.pairs = correlate(series, degraded, settings)
        columns = {
            "a": [c.operation_a for c in result.pairs],
            "b": [c.operation_b for c in result.pairs],
            "r": [c.pearson_r for c in result.pairs],
            "n": [c.samples for c in result.pairs],
            "conf": [c.confidence for c in result.pairs],
            "deg": [c.both_degraded for c in result.pairs],
            "kind": [c.bottleneck_type for c in result.pairs],
            "rec": [c.recommendation for c in result.pairs],
        }
        bounds = {
            "partition_start": partition_start,
            "window_start": window_start,
            "window_end": partition_end,
        }
        conn.execute(query("detection", "upsert_correlations"), bounds | columns)
        conn.execute(query("detection", "delete_stale_correlations"), bounds | columns)
    return result
