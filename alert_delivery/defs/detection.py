"""Dagster wrappers for detection: baselines (daily), anomalies and correlations (hourly).

The work lives in ``alert_delivery.detection``; these assets pass the partition window, write
metadata a user reads in the UI and report the data-quality checks.

The hourly assets (and ``alerts``) share one partitions definition, built when the definitions
load (``build``), and a single-run backfill policy: a UI backfill of an hour range is ONE run of
``detect_hourly`` that re-detects each hour in order (anomalies, then correlations, then alerts),
so historical alerts are summarised in one digest per backfill. Schedules check for work first
(``alert_delivery.operations.due``): an hour without metrics launches nothing.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from alert_delivery.defs import tags
from alert_delivery.defs.partitions import Partitions, hourly_due_schedule, hours
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
from alert_delivery.operations import due


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


def _anomalies(
    context: dg.AssetExecutionContext, config: AnomaliesConfig, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = AnomalySettings(
        z_threshold=config.z_threshold,
        p99_ratio_threshold=config.p99_ratio_threshold,
        warning_ratio=config.warning_ratio,
        critical_ratio=config.critical_ratio,
        min_samples=config.min_samples,
        baseline_window_days=config.baseline_window_days,
    )
    totals = {"anomalies": 0, "critical": 0, "warning": 0, "info": 0, "rollup_rows": 0}
    evaluated = without = 0
    baseline_end = ""
    last_start = context.partition_time_window.start
    for start, end in hours(context.partition_time_window):
        # One transaction per hour: a long backfill commits as it goes.
        with postgres.get_connection() as conn:
            result = detect_anomalies(conn, start, end, settings)
        totals["anomalies"] += len(result.anomalies)
        totals["critical"] += result.count("CRITICAL")
        totals["warning"] += result.count("WARNING")
        totals["info"] += result.count("INFO")
        totals["rollup_rows"] += result.rollups
        evaluated, without = len(result.evaluated), len(result.without_baseline)
        baseline_end = result.baseline_window_end.isoformat()
        last_start = start
    with postgres.get_connection() as conn:
        results = [
            _check(checks.no_future_timestamps(conn), "anomalies"),
            _check(checks.anomalies_reference_metrics(conn, last_start), "anomalies"),
        ]
        table = report.top_anomalies_markdown(conn, last_start)
    metadata: dict[str, dg.RawMetadataValue] = dict(totals)
    metadata.update(
        {
            "hours": len(context.partition_keys),
            "operations_evaluated": evaluated,
            "operations_without_baseline": without,
            "baseline_window_end": baseline_end,
            "top_anomalies": dg.MetadataValue.md(table),
        }
    )
    return dg.MaterializeResult(metadata=metadata, check_results=results)


def _correlations(
    context: dg.AssetExecutionContext, config: CorrelationsConfig, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = CorrelationSettings(config.lookback_hours, config.min_samples, config.strong_r)
    pairs = strong = bottlenecks = operations = 0
    last = None
    for start, end in hours(context.partition_time_window):
        with postgres.get_connection() as conn:
            last = detect_correlations(conn, start, end, settings)
        pairs += len(last.pairs)
        strong += len(last.strong)
        bottlenecks += len(last.bottlenecks)
        operations = last.operations
    assert last is not None
    return dg.MaterializeResult(
        metadata={
            "hours": len(context.partition_keys),
            "operations": operations,
            "pairs": pairs,
            "strong_pairs": strong,
            "bottlenecks": bottlenecks,
            "window_start": last.window_start.isoformat(),
            "strongest": dg.MetadataValue.md(report.bottlenecks_markdown(last.strong)),
        }
    )


def build(parts: Partitions) -> dg.Definitions:
    """Detection assets, jobs and schedules on the partitions the definitions loaded with."""
    backfill = dg.BackfillPolicy.single_run()
    anomalies = dg.asset(
        key="anomalies",
        group_name="detection",
        partitions_def=parts.hourly,
        backfill_policy=backfill,
        deps=["baselines"],
        description="Statistical, P99-degradation and combined anomalies of one hour, per"
        " operation.",
        check_specs=[
            dg.AssetCheckSpec("no_future_timestamps", asset="anomalies"),
            dg.AssetCheckSpec("anomalies_reference_metrics", asset="anomalies"),
        ],
    )(_anomalies)
    correlations = dg.asset(
        key="correlations",
        group_name="detection",
        partitions_def=parts.hourly,
        backfill_policy=backfill,
        deps=["anomalies"],
        description="Pearson r of every operation pair over the lookback window; bottleneck types.",
    )(_correlations)

    baselines_job = dg.define_asset_job(
        "recalculate_baselines", selection=["baselines"], tags=tags.DETECTION
    )
    # Alerts (the alerting domain's asset, contract key "alerts") ride along, so each hourly run
    # (and each backfill) goes from metrics to enqueued notifications.
    detection_job = dg.define_asset_job(
        "detect_hourly",
        selection=["anomalies", "correlations", "alerts"],
        tags=tags.DETECTION,
    )

    @dg.schedule(
        name="baselines_daily",
        job=baselines_job,
        cron_schedule="10 0 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Recalculate baselines at 00:10 UTC when the 7-day window holds metrics.",
    )
    def baselines_daily(
        context: dg.ScheduleEvaluationContext, postgres: PostgresResource
    ) -> dg.RunRequest | dg.SkipReason:
        at = context.scheduled_execution_time.astimezone(UTC)
        end = at.replace(hour=0, minute=0, second=0, microsecond=0)
        with postgres.get_connection() as conn:
            window = timedelta(days=BaselinesConfig().window_days)
            if not due.baselines_due(conn, end - window, end):
                return dg.SkipReason("no metrics in the baseline window")
        return dg.RunRequest(run_key=f"baselines:{end:%Y-%m-%d}")

    detection_hourly = hourly_due_schedule(
        name="detection_hourly",
        job=detection_job,
        partitions=parts.hourly,
        minute=5,
        description="Detect the previous hour at minute 5 when it holds metrics.",
        run_key="detect",
        is_due=due.detection_due,
        nothing="no metrics recorded",
    )

    return dg.Definitions(
        assets=[baselines, anomalies, correlations],
        jobs=[baselines_job, detection_job],
        schedules=[baselines_daily, detection_hourly],
    )
