"""Baseline recalculation: per operation p50/p95/p99, mean, stddev over a rolling window.

Each operation is computed in its own savepoint, so one failure never stops the others. The run
is recorded in ``baseline_runs``; every replaced baseline leaves a ``baseline_history`` row with
the percent change, and a ``baseline_versions`` row keyed by its window (what detection reads).
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alert_delivery.db import query
from alert_delivery.detection.settings import BaselineSettings


@dataclass(frozen=True)
class BaselineStats:
    operation_type: str
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    stddev_ms: float


@dataclass
class BaselineRun:
    run_id: int
    window_start: datetime
    window_end: datetime
    operations: int = 0
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not (self.failed or self.skipped):
            return "succeeded"
        return "partial" if self.updated else "failed"


def validate_stats(stats: BaselineStats) -> str | None:
    """Why these numbers cannot be a baseline, or ``None`` when they can."""
    values = (stats.p50_ms, stats.p95_ms, stats.p99_ms, stats.mean_ms, stats.stddev_ms)
    if not all(math.isfinite(v) for v in values):
        return "non-finite statistic"
    if not stats.p50_ms <= stats.p95_ms <= stats.p99_ms:
        return (
            f"percentiles out of order: p50={stats.p50_ms:g} p95={stats.p95_ms:g} "
            f"p99={stats.p99_ms:g}"
        )
    return None


def percent_change(old: float | None, new: float) -> float | None:
    if old is None or old == 0:
        return None
    return 100.0 * (new - old) / old


def _params(stats: BaselineStats, run: BaselineRun, days: int) -> dict[str, Any]:
    return {
        "op": stats.operation_type,
        "p50": stats.p50_ms,
        "p95": stats.p95_ms,
        "p99": stats.p99_ms,
        "mean": stats.mean_ms,
        "stddev": stats.stddev_ms,
        "samples": stats.samples,
        "start": run.window_start,
        "end": run.window_end,
        "days": days,
        "run_id": run.run_id,
    }


def _window_stats(
    conn: psycopg.Connection, run: BaselineRun, budget_s: float
) -> dict[str, BaselineStats] | None:
    """Statistics of every operation in the window, or ``None`` when the budget ran out first."""
    current = conn.execute(query("detection", "current_limits")).fetchone()
    previous = {"timeout": current[0], "work_mem": current[1]} if current else None
    try:
        with conn.transaction():
            # Sorting a week of rows in memory instead of on disk halves the query.
            limits = {"timeout": f"{max(1, int(budget_s * 1000))}ms", "work_mem": "64MB"}
            conn.execute(query("detection", "set_limits"), limits)
            rows = conn.execute(
                query("detection", "baseline_stats"),
                {"start": run.window_start, "end": run.window_end},
            ).fetchall()
    except psycopg.errors.QueryCanceled:
        return None
    finally:
        if previous:
            conn.execute(query("detection", "set_limits"), previous)
    return {
        op: BaselineStats(op, int(n), float(q[0]), float(q[1]), float(q[2]), float(m), float(sd))
        for op, n, q, m, sd in rows
    }


def _recalculate_one(
    conn: psycopg.Connection,
    op: str,
    stats: BaselineStats | None,
    old: tuple[float, float, float, float] | None,
    run: BaselineRun,
    settings: BaselineSettings,
) -> None:
    samples = stats.samples if stats else 0
    if stats is None or samples < settings.min_samples:
        run.kept.append(op)
        what = "kept the previous baseline" if old else "no baseline yet"
        run.errors.append(
            {"operation": op, "reason": f"{samples} samples < {settings.min_samples}; {what}"}
        )
        return
    problem = validate_stats(stats)
    if problem:
        run.failed.append(op)
        run.errors.append({"operation": op, "reason": problem})
        return
    params = _params(stats, run, settings.window_days)
    old_p50, old_p95, old_p99, old_mean = old if old else (None, None, None, None)
    params |= {
        "old_p50": old_p50,
        "old_p95": old_p95,
        "old_p99": old_p99,
        "old_mean": old_mean,
        "p50_pct": percent_change(old_p50, stats.p50_ms),
        "p95_pct": percent_change(old_p95, stats.p95_ms),
        "p99_pct": percent_change(old_p99, stats.p99_ms),
        "mean_pct": percent_change(old_mean, stats.mean_ms),
    }
    conn.execute(query("detection", "upsert_baseline"), params)
    conn.execute(query("detection", "upsert_baseline_version"), params)
    conn.execute(query("detection", "insert_baseline_history"), params)
    run.updated.append(op)


def recalculate_baselines(
    conn: psycopg.Connection,
    *,
    window_end: datetime,
    settings: BaselineSettings | None = None,
    dagster_run_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BaselineRun:
    """Recalculate every operation's baseline over ``[window_end - window_days, window_end)``.

    Operations left when ``time_budget_s`` is used up are reported as skipped. The caller owns the
    transaction (commit after).
    """
    settings = settings or BaselineSettings()
    started = clock()
    window_start = window_end - timedelta(days=settings.window_days)
    params = {"days": settings.window_days, "end": window_end, "dagster_run_id": dagster_run_id}
    run_row = conn.execute(query("detection", "start_baseline_run"), params).fetchone()
    assert run_row is not None
    run = BaselineRun(int(run_row[0]), window_start, window_end)
    operations = [str(r[0]) for r in conn.execute(query("detection", "operation_types"))]
    run.operations = len(operations)
    previous = {
        str(r[0]): (float(r[1]), float(r[2]), float(r[3]), float(r[4]))
        for r in conn.execute(query("detection", "active_baselines"))
    }
    all_stats = _window_stats(conn, run, settings.time_budget_s - (clock() - started))
    for index, op in enumerate(operations):
        if all_stats is None or clock() - started >= settings.time_budget_s:
            run.skipped = operations[index:]
            run.errors.append(
                {
                    "operation": ", ".join(run.skipped),
                    "reason": f"skipped: time budget of {settings.time_budget_s:g} s used up",
                }
            )
            break
        try:
            with conn.transaction():
                _recalculate_one(conn, op, all_stats.get(op), previous.get(op), run, settings)
        except psycopg.Error as exc:
            run.failed.append(op)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            run.errors.append({"operation": op, "reason": first})
    conn.execute(
        query("detection", "finish_baseline_run"),
        {
            "run_id": run.run_id,
            "status": run.status,
            "operations": run.operations,
            "updated": len(run.updated),
            "kept": len(run.kept),
            "skipped": len(run.skipped),
            "failed": len(run.failed),
            "errors": Jsonb(run.errors),
        },
    )
    return run
