"""Baseline recalculation: per operation p50/p95/p99, mean, stddev over a rolling window.

Each operation is computed in its own savepoint, so one failure never stops the others. The run
is recorded in ``baseline_runs``; every replaced baseline leaves a ``baseline_history`` row with
the percent change, and a ``baseline_versions`` row keyed by its window (what detection reads).
A run that updated nothing is ``failed``, one that updated some operations but failed or skipped
others ``partial``; either raises a ``BASELINE_RECALC_ERROR`` alert (WARNING) through the
producer API, so a stale baseline never goes unnoticed.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alert_delivery.alerting.producer import RaiseResult, raise_alert
from alert_delivery.db import query
from alert_delivery.detection.settings import BaselineSettings
from alert_delivery.errors import AlertDeliveryError

ALERT_TYPE = "BASELINE_RECALC_ERROR"
ALERT_SOURCE = "detection"
ALERT_OPERATION = "baselines"
_LISTED_ERRORS = 5


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
    alert: RaiseResult | None = None
    """The ``BASELINE_RECALC_ERROR`` alert a failed or partial run raised."""

    @property
    def status(self) -> str:
        """``failed`` when no baseline was updated (no operation, too few samples everywhere,
        every operation failed or skipped); ``partial`` when some were but others failed or were
        skipped; ``succeeded`` otherwise (kept ones are not failures: they lack samples)."""
        if not self.updated:
            return "failed"
        return "partial" if self.failed or self.skipped else "succeeded"


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


def baseline_alert(run: BaselineRun) -> dict[str, Any]:
    """The producer API fields of the alert about a run that did not succeed."""
    summary = (
        f"{len(run.updated)} updated, {len(run.kept)} kept, {len(run.skipped)} skipped, "
        f"{len(run.failed)} failed of {run.operations} operations"
    )
    listed = "; ".join(f"{e['operation']}: {e['reason']}" for e in run.errors[:_LISTED_ERRORS])
    more = len(run.errors) - _LISTED_ERRORS
    description = (
        f"Baseline run {run.run_id} over [{run.window_start.isoformat()}, "
        f"{run.window_end.isoformat()}) {run.status}: {summary}. Existing baselines stay "
        f"active. {listed}{f' (and {more} more in baseline_runs.errors)' if more > 0 else ''}"
    ).strip()
    return {
        "source": ALERT_SOURCE,
        "operation_type": ALERT_OPERATION,
        "alert_type": ALERT_TYPE,
        "severity": "WARNING",
        "title": f"Baseline recalculation {run.status}: {summary}",
        "description": description,
        "details": {
            "run_id": run.run_id,
            "status": run.status,
            "window_start": run.window_start.isoformat(),
            "window_end": run.window_end.isoformat(),
            "operations": run.operations,
            "updated": len(run.updated),
            "kept": len(run.kept),
            "skipped": len(run.skipped),
            "failed": len(run.failed),
            "errors": run.errors[:_LISTED_ERRORS],
        },
    }


def _raise_run_alert(conn: psycopg.Connection, run: BaselineRun) -> None:
    # In a savepoint: an alerting failure is recorded on the run, never loses the run's record.
    try:
        with conn.transaction():
            run.alert = raise_alert(conn, **baseline_alert(run))
    except (AlertDeliveryError, psycopg.Error) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        run.errors.append({"operation": ALERT_OPERATION, "reason": f"{ALERT_TYPE} alert: {first}"})


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
    transaction (commit after). A run that does not succeed raises a ``BASELINE_RECALC_ERROR``
    alert in that transaction.
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
    if not operations:
        run.errors.append(
            {
                "operation": "(none)",
                "reason": "no operation to recalculate: performance_metrics is empty and no "
                "baseline exists",
            }
        )
    if run.status != "succeeded":
        _raise_run_alert(conn, run)
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
