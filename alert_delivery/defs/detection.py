"""Dagster wrappers for detection: baselines (daily), anomalies and correlations (hourly).

The work lives in ``alert_delivery.detection``; these assets pass the partition window, write
metadata a user reads in the UI and report the data-quality checks.
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from alert_delivery.defs.partitions import HOURLY
from alert_delivery.defs.resources import PostgresResource
from alert_delivery.detection import checks, report
from alert_delivery.detection.anomalies import detect_anomalies
from alert_delivery.detection.baselines import recalculate_baselines
from alert_delivery.detection.correlations import detect_correlations
from alert_delivery.detection.settings import (
    AnomalySettings,
    BaselineSettings,
    CorrelationSettings,
)
from alert_delivery.inputs import parse_time


class BaselinesConfig(dg.Config):
    window_days: int = 7
    min_samples: int = 10
    time_budget_s: float = 60.0
    window_end: str = ""
    """ISO timestamp; empty means the start of the current UTC day (what hourly detection uses)."""


class AnomaliesConfig(dg.Config):
    z_threshold: float = 3.0
    p99_ratio_threshold: float = 1.5
    warning_ratio: float = 1.5
    critical_ratio: float = 2.0
    min_samples: int = 5
    baseline_window_days: int = 7


class CorrelationsConfig(dg.Config):
    lookback_hours: int = CorrelationSettings.lookback_hours
    min_samples: int = CorrelationSettings.min_samples
    strong_r: float = CorrelationSettings.strong_r
    """Pearson r from which a pair of co-degrading operations is a bottleneck (0 < r <= 1)."""


def _window_end(text: str) -> datetime:
    if not text:
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return parse_time(text, where="window_end")


def _check(outcome: checks.CheckOutcome, asset: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={"offenders": len(outcome.offenders)},
    )


@dg.asset(
    key="baselines",
    group_name="detection",
    description="Per-operation p50/p95/p99, mean and stddev over a rolling window (default 7 d).",
    check_specs=[
        dg.AssetCheckSpec("percentile_ordering", asset="baselines"),
        dg.AssetCheckSpec("minimum_samples", asset="baselines"),
    ],
)
def baselines(
    context: dg.AssetExecutionContext, config: BaselinesConfig, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = BaselineSettings(config.window_days, config.min_samples, config.time_budget_s)
    with postgres.get_connection() as conn:
        run = recalculate_baselines(
            conn,
            window_end=_window_end(config.window_end),
            settings=settings,
            dagster_run_id=context.run.run_id,
        )
        results = [
            _check(checks.percentile_ordering(conn), "baselines"),
            _check(checks.minimum_samples(conn, settings.min_samples), "baselines"),
        ]
        table = report.baselines_markdown(conn)
    for error in run.errors:
        context.log.warning("%s: %s", error["operation"], error["reason"])
    metadata: dict[str, Any] = {
        "run_id": run.run_id,
        "status": run.status,
        "window_end": run.window_end.isoformat(),
        "updated": len(run.updated),
        "kept_previous": len(run.kept),
        "skipped": len(run.skipped),
        "failed": len(run.failed),
        "baselines": dg.MetadataValue.md(table),
    }
    if run.alert:  # a failed or partial run raised a BASELINE_RECALC_ERROR alert: name it
        metadata |= {"alert_id": run.alert.alert_id, "alert_outcome": run.alert.outcome}
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=results,
    )


@dg.asset(
    key="anomalies",
    group_name="detection",
    partitions_def=HOURLY,
    deps=["baselines"],
    description="Statistical, P99-degradation and combined anomalies of one hour, per operation.",
    check_specs=[
        dg.AssetCheckSpec("no_future_timestamps", asset="anomalies"),
        dg.AssetCheckSpec("anomalies_reference_metrics", asset="anomalies"),
    ],
)
def anomalies(
    context: dg.AssetExecutionContext, config: AnomaliesConfig, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    window = context.partition_time_window
    settings = AnomalySettings(
        z_threshold=config.z_threshold,
        p99_ratio_threshold=config.p99_ratio_threshold,
        warning_ratio=config.warning_ratio,
        critical_ratio=config.critical_ratio,
        min_samples=config.min_samples,
        baseline_window_days=config.baseline_window_days,
    )
    with postgres.get_connection() as conn:
        result = detect_anomalies(conn, window.start, window.end, settings)
        results = [
            _check(checks.no_future_timestamps(conn), "anomalies"),
            _check(checks.anomalies_reference_metrics(conn, window.start), "anomalies"),
        ]
        table = report.top_anomalies_markdown(conn, window.start)
    return dg.MaterializeResult(
        metadata={
            "anomalies": len(result.anomalies),
            "critical": result.count("CRITICAL"),
            "warning": result.count("WARNING"),
            "info": result.count("INFO"),
            "operations_evaluated": len(result.evaluated),
            "operations_without_baseline": len(result.without_baseline),
            "rollup_rows": result.rollups,
            "baseline_window_end": result.baseline_window_end.isoformat(),
            "top_anomalies": dg.MetadataValue.md(table),
        },
        check_results=results,
    )


@dg.asset(
    key="correlations",
    group_name="detection",
    partitions_def=HOURLY,
    deps=["anomalies"],
    description="Pearson r of every operation pair over the lookback window; bottleneck types.",
)
def correlations(
    context: dg.AssetExecutionContext, config: CorrelationsConfig, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    window = context.partition_time_window
    settings = CorrelationSettings(config.lookback_hours, config.min_samples, config.strong_r)
    with postgres.get_connection() as conn:
        result = detect_correlations(conn, window.start, window.end, settings)
    return dg.MaterializeResult(
        metadata={
            "operations": result.operations,
            "pairs": len(result.pairs),
            "strong_pairs": len(result.strong),
            "bottlenecks": len(result.bottlenecks),
            "window_start": result.window_start.isoformat(),
            "strongest": dg.MetadataValue.md(report.bottlenecks_markdown(result.strong)),
        }
    )


baselines_job = dg.define_asset_job("recalculate_baselines", selection=["baselines"])
# Alerts (the alerting domain's asset, contract key "alerts") ride along, so each hourly run goes
# from metrics to enqueued notifications.
detection_job = dg.define_asset_job(
    "detect_hourly", selection=["anomalies", "correlations", "alerts"]
)
baselines_schedule = dg.ScheduleDefinition(
    name="baselines_daily",
    job=baselines_job,
    cron_schedule="10 0 * * *",
    execution_timezone="UTC",
)
detection_schedule = dg.build_schedule_from_partitioned_job(
    detection_job, name="detection_hourly", minute_of_hour=5
)

defs = dg.Definitions(
    assets=[baselines, anomalies, correlations],
    jobs=[baselines_job, detection_job],
    schedules=[baselines_schedule, detection_schedule],
)
