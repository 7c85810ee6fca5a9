"""Synthetic metrics of a git-in-Postgres tool, with an optional injected latency spike.

Used by the demo, the tests and the benchmark. Latencies are log-normal around a per-operation
median; merges sometimes conflict; a spike multiplies every duration of one operation in one hour.

The demo's calls (``conn`` is a psycopg connection to the migrated database)::

    from datetime import UTC, datetime, timedelta
    from alert_delivery.detection import synthetic, baselines, anomalies, correlations

    now = datetime.now(UTC)
    hour = synthetic.last_complete_hour(now)            # [hour, hour + 1 h) gets the spike
    rows = synthetic.generate_metrics(
        now=now, hours=7 * 24, rows_per_hour=20, operations=6, seed=7,
        spike=synthetic.Spike("merge", hour, factor=4.0),
    )
    synthetic.load_metric_rows(conn, rows)
    baselines.recalculate_baselines(conn, window_end=now)          # active baselines, history
    anomalies.detect_anomalies(conn, hour, hour + timedelta(hours=1))   # >= 1 CRITICAL (merge)
    correlations.detect_correlations(conn, hour, hour + timedelta(hours=1))
    conn.commit()

Detection judges the hour against the baseline version whose 7-day window ends at the start of
that hour's UTC day (computed on demand when missing), so the spike never inflates the baseline
it is judged against, and a backfill gives the same answer as the live run. That version needs
at least 10 samples per operation in the week before the hour's day: give the demo two days of
history or more.

Through Dagster instead: materialise ``baselines`` (default config: window ending at the start of
the current UTC day), then ``anomalies`` and ``correlations`` with partition key
``hour.strftime("%Y-%m-%d-%H:%M")``.
"""

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alert_delivery.detection.ingest import load_metric_rows
from alert_delivery.detection.rows import MetricRow

__all__ = [
    "OPERATIONS",
    "Spike",
    "generate_metrics",
    "last_complete_hour",
    "load_metric_rows",
    "operation_names",
]

# (name, median ms): the first six are the demo's, in the order the demo gets them.
OPERATIONS: tuple[tuple[str, float], ...] = (
    ("merge", 180.0),
    ("commit", 45.0),
    ("branch_create", 12.0),
    ("object_store_put", 35.0),
    ("query_cache_lookup", 2.5),
    ("wal_flush", 6.0),
    ("object_store_get", 20.0),
    ("checkout", 60.0),
    ("rebase", 240.0),
    ("cherry_pick", 90.0),
    ("merge_base", 25.0),
    ("diff", 30.0),
    ("log_walk", 40.0),
    ("tag_create", 8.0),
    ("branch_delete", 10.0),
    ("pack_write", 70.0),
    ("pack_read", 28.0),
    ("blob_read", 4.0),
    ("blob_write", 9.0),
    ("tree_build", 15.0),
    ("query_cache_store", 3.5),
    ("query_cache_evict", 1.5),
    ("cache_warm", 50.0),
    ("wal_archive", 20.0),
    ("checkpoint", 300.0),
    ("txn_commit", 5.0),
    ("index_update", 11.0),
    ("ref_update", 3.0),
    ("gc_sweep", 500.0),
    ("fetch", 120.0),
    ("push", 150.0),
    ("clone", 900.0),
    ("status_scan", 18.0),
)
SIGMA = 0.25  # log-normal shape: p99 is about 1.8x the median


@dataclass(frozen=True)
class Spike:
    operation: str
    hour: datetime
    """Start of the hour whose durations are multiplied."""
    factor: float = 4.0


def last_complete_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def operation_names(count: int) -> list[str]:
    if not 1 <= count <= len(OPERATIONS):
        raise ValueError(f"operations must be between 1 and {len(OPERATIONS)}")
    return [name for name, _ in OPERATIONS[:count]]


def _status(rng: random.Random, operation: str) -> str:
    draw = rng.random()
    if operation.startswith(("merge", "rebase", "cherry_pick")) and draw < 0.06:
        return "conflict"
    return "failed" if draw > 0.995 else "success"


def generate_metrics(
    *,
    now: datetime,
    hours: int = 168,
    rows_per_hour: int = 20,
    operations: int | Sequence[str] = 6,
    seed: int = 0,
    spike: Spike | None = None,
    spikes: Sequence[Spike] = (),
) -> Iterator[MetricRow]:
    """Rows for the ``hours`` complete hours before ``now``; ``rows_per_hour`` per operation.

    Deterministic for a given seed. Yields lazily so a million rows never sit in memory.
    """
    names = operation_names(operations) if isinstance(operations, int) else list(operations)
    medians = dict(OPERATIONS)
    rng = random.Random(seed)
    boosts = {(s.operation, s.hour): s.factor for s in (*spikes, *([spike] if spike else []))}
    end = now.replace(minute=0, second=0, microsecond=0)
    for k in range(hours, 0, -1):
        hour = end - timedelta(hours=k)
        for name in names:
            median = medians.get(name, 25.0)
            factor = boosts.get((name, hour), 1.0)
            for _ in range(rows_per_hour):
                duration = median * factor * math.exp(rng.gauss(0.0, SIGMA))
                offset = timedelta(seconds=rng.random() * 3599.999)
                yield MetricRow(name, round(duration, 3), hour + offset, _status(rng, name))
