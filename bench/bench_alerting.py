"""Creating, routing and enqueueing alerts through the SQL pipeline.

Every alert has its own fingerprint (no dedup shortcut) and goes through content dedup, silence
and inhibition checks, routing by the default rules to one webhook of each kind, grouping and
the NOTIFY: in batches of 500 per transaction (target >= 4,000 alerts/s), and one transaction per
alert with its commit (target >= 600 alerts/s). Rounds alternate batch and single runs on a fresh
database each; the rows give the median round and the range.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from alert_delivery.alerting import raise_alert, raise_alerts
from bench.common import BenchContext, BenchRow

COUNT = 10_000
BATCH = 500
SINGLE = 1_000
TARGET = 4_000.0
SINGLE_TARGET = 600.0
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SEVERITIES = ("CRITICAL", "WARNING", "INFO", "INFO", "WARNING")


def _alerts(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "source": "bench",
            "operation_type": f"{prefix}-op-{i}",
            "alert_type": ("STATISTICAL", "P99_DEGRADATION", "COMBINED")[i % 3],
            "severity": SEVERITIES[i % len(SEVERITIES)],
            "title": f"{prefix}-op-{i}: latency anomaly",
            "description": f"p99 {i % 7 + 2}x the baseline over the last hour",
            "details": {"z_score": 3.5 + i % 5, "metric_id": i, "duration_ms": 1200.5},
        }
        for i in range(n)
    ]


def _setup(url: str) -> None:
    with psycopg.connect(url) as conn:
        for kind in ("slack", "mattermost", "email", "pagerduty", "webhook", "inbox"):
            conn.execute(
                "INSERT INTO alert_delivery.webhooks (name, kind) VALUES (%s, %s)", (kind, kind)
            )


def _counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM alert_delivery.delivery_queue),"
            " (SELECT count(*) FROM alert_delivery.delivery_log WHERE event = 'queued')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _raise_batches(url: str, alerts: list[dict[str, Any]]) -> list[float]:
    latencies: list[float] = []
    with psycopg.connect(url) as conn:
        for i in range(0, len(alerts), BATCH):
            t0 = time.perf_counter()
            with conn.transaction():
                results = raise_alerts(conn, alerts[i : i + BATCH])
            latencies.append((time.perf_counter() - t0) * 1000 / BATCH)
            assert all(r.outcome == "notified" for r in results), results[:3]
    return latencies


def _concurrent(ctx: BenchContext, producers: int) -> BenchRow:
    url = ctx.fresh_database()
    _setup(url)
    alerts = _alerts("conc", COUNT)
    shares = [alerts[i::producers] for i in range(producers)]
    started = time.perf_counter()
    with ThreadPoolExecutor(producers) as pool:
        latencies = [
            ms for part in pool.map(lambda a: _raise_batches(url, a), shares) for ms in part
        ]
    seconds = time.perf_counter() - started
    return BenchRow(
        f"alerting: same, {producers} concurrent producers",
        COUNT,
        seconds,
        target=f">= {TARGET:,.0f}/s",
        met=COUNT / seconds >= TARGET,
        latencies_ms=latencies,
        note="ms per alert per batch",
    )


def _unrouted(ctx: BenchContext) -> BenchRow:
    """The pipeline without any webhook: validation, dedup, silence, inhibition, routing only."""
    url = ctx.fresh_database()
    alerts = _alerts("bare", COUNT // 5)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        for i in range(0, len(alerts), BATCH):
            with conn.transaction():
                raise_alerts(conn, alerts[i : i + BATCH])
    return BenchRow(
        "alerting: pipeline without formatting (unrouted)",
        len(alerts),
        time.perf_counter() - started,
        note="no webhooks: every alert ends suppressed_no_route",
    )


def _batch_round(ctx: BenchContext) -> tuple[float, list[float], tuple[int, int]]:
    url = ctx.fresh_database()
    _setup(url)
    started = time.perf_counter()
    latencies = _raise_batches(url, _alerts("batch", COUNT))
    return time.perf_counter() - started, latencies, _counts(url)


def _single_round(ctx: BenchContext) -> tuple[float, list[float]]:
    """One transaction per alert, after a batch run's worth of alerts (the tables hold what a
    working system holds)."""
    url = ctx.fresh_database()
    _setup(url)
    _raise_batches(url, _alerts("before", COUNT))
    latencies: list[float] = []
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for fields in _alerts("single", SINGLE):
            t0 = time.perf_counter()
            with conn.transaction():
                raise_alert(conn, **fields)
            latencies.append((time.perf_counter() - t0) * 1000)
        return time.perf_counter() - started, latencies


def _median_round(
    rounds: list[tuple[float, list[float]]], count: int
) -> tuple[float, list[float], str]:
    rates = sorted(count / seconds for seconds, _ in rounds)
    seconds, latencies = sorted(rounds)[len(rounds) // 2]
    spread = f"median of {len(rounds)} interleaved rounds, {rates[0]:,.0f}-{rates[-1]:,.0f}/s"
    return seconds, latencies, spread


def run(ctx: BenchContext) -> list[BenchRow]:
    batches: list[tuple[float, list[float]]] = []
    singles: list[tuple[float, list[float]]] = []
    counts = (0, 0)
    for _ in range(ROUNDS):
        seconds, latencies, counts = _batch_round(ctx)
        batches.append((seconds, latencies))
        singles.append(_single_round(ctx))
        ctx.settle()
    batch_seconds, batch_latencies, batch_spread = _median_round(batches, COUNT)
    single_seconds, single_latencies, single_spread = _median_round(singles, SINGLE)
    rows, queued = counts
    return [
        _unrouted(ctx),
        BenchRow(
            "alerting: raise+route+enqueue (batches of 500)",
            COUNT,
            batch_seconds,
            target=f">= {TARGET:,.0f}/s",
            met=COUNT / batch_seconds >= TARGET,
            latencies_ms=batch_latencies,
            note=f"{batch_spread}; {rows} queue rows, {queued} queued log rows; "
            "ms per alert per batch",
        ),
        BenchRow(
            "alerting: raise_alert, one transaction each",
            SINGLE,
            single_seconds,
            target=f">= {SINGLE_TARGET:,.0f}/s",
            met=SINGLE / single_seconds >= SINGLE_TARGET,
            latencies_ms=single_latencies,
            note=f"{single_spread}; commit included",
        ),
        _concurrent(ctx, 2),
    ]
