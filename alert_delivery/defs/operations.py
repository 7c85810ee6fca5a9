"""Dagster definitions for operations: hourly report assets and the run-failure sensor.

Thin wrappers over ``alert_delivery.operations``; the SQL lives in ``sql/queries/operations.sql``.
The reports sit at the end of the lineage (``delivery_log -> delivery_report``,
``alerts -> response_sla_report``) and run on the ``reports_hourly`` schedule, which skips an
hour in which nothing was logged or raised. The ``log_partitions`` schedule keeps
``delivery_log``'s daily partitions: it creates the coming days and drops the days older than
``ALERT_DELIVERY_LOG_RETENTION_DAYS``, launching a run only on a day one of them is due.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC

import dagster as dg

from alert_delivery.config import load_settings
from alert_delivery.defs import tags
from alert_delivery.defs.partitions import Partitions, hourly_due_schedule
from alert_delivery.defs.resources import PostgresResource
from alert_delivery.operations import due, log_partitions, reports
from alert_delivery.operations.pipeline_alerts import raise_pipeline_alert

_GROUP = "operations"


def _cell(value: object) -> str | int | float | bool:
    """Table metadata cells cannot be ``None``; show a dash instead."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, str | int | bool):
        return value
    return str(value)


def _table(
    records: Sequence[Mapping[str, object]], columns: list[tuple[str, str]]
) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord({k: _cell(v) for k, v in r.items()}) for r in records],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns]),
    )


def _delivery_report(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    window = context.partition_time_window
    with postgres.get_connection() as conn:
        report = reports.delivery_report(conn, window.start, window.end)
    by_webhook = [
        {
            "channel": r.channel,
            "webhook": r.webhook,
            "success_rate": r.success_rate,
            "delivered": r.delivered,
            "failed": r.failed,
            "retries": r.retries,
            "dead_lettered": r.dead_lettered,
            "p50_ms": r.p50_ms,
            "p95_ms": r.p95_ms,
            "p99_ms": r.p99_ms,
        }
        for r in report.webhooks
    ]
    by_channel = [
        {
            "channel": c.channel,
            "success_rate": c.success_rate,
            "delivered": c.delivered,
            "failed": c.failed,
            "retries": c.retries,
            "dead_lettered": c.dead_lettered,
        }
        for c in report.channels
    ]
    counts = ["delivered", "failed", "retries", "dead_lettered"]
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(reports.delivery_markdown(report)),
            "by_channel": _table(
                by_channel,
                [("channel", "string"), ("success_rate", "float")] + [(c, "int") for c in counts],
            ),
            "by_webhook": _table(
                by_webhook,
                [("channel", "string"), ("webhook", "string"), ("success_rate", "float")]
                + [(c, "int") for c in counts]
                + [("p50_ms", "float"), ("p95_ms", "float"), ("p99_ms", "float")],
            ),
            "success_rate": dg.MetadataValue.float(
                report.success_rate if report.success_rate is not None else float("nan")
            ),
            "delivered": dg.MetadataValue.int(report.delivered),
            "failed_attempts": dg.MetadataValue.int(report.failed),
            "retries": dg.MetadataValue.int(report.retries),
            "dead_lettered": dg.MetadataValue.int(report.dead_lettered),
            "latency_samples": dg.MetadataValue.int(report.latency.samples),
            "latency_p50_ms": dg.MetadataValue.float(report.latency.p50_ms or 0.0),
            "latency_p95_ms": dg.MetadataValue.float(report.latency.p95_ms or 0.0),
            "latency_p99_ms": dg.MetadataValue.float(report.latency.p99_ms or 0.0),
        }
    )


def _response_sla_report(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    window = context.partition_time_window
    with postgres.get_connection() as conn:
        rows = reports.sla_report(conn, window.start, window.end)
    records = [
        {
            "severity": r.severity,
            "target_s": r.target_s,
            "alerts": r.alerts,
            "acknowledged": r.acknowledged,
            "met": r.met,
            "breached": r.breached,
            "open": r.open,
            "compliance": r.compliance,
            "p50_time_to_ack_s": r.p50_time_to_ack_s,
            "max_time_to_ack_s": r.max_time_to_ack_s,
        }
        for r in rows
    ]
    columns = [("severity", "string"), ("target_s", "int")]
    columns += [(c, "int") for c in ("alerts", "acknowledged", "met", "breached", "open")]
    columns += [("compliance", "float"), ("p50_time_to_ack_s", "float")]
    columns += [("max_time_to_ack_s", "float")]
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(reports.sla_markdown(rows, window.start, window.end)),
            "by_severity": _table(records, columns),
            "breached": dg.MetadataValue.int(sum(r.breached for r in rows)),
            "alerts": dg.MetadataValue.int(sum(r.alerts for r in rows)),
        }
    )


def _failure_text(context: dg.RunFailureSensorContext) -> str:
    """The first step error if a step failed, else the run failure message."""
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data is not None and data.error is not None:
            error = data.error
            # Dagster wraps the op's exception; the innermost cause is what a human needs.
            while error.cause is not None:
                error = error.cause
            return f"step {event.step_key}: {error.message}"
    return context.failure_event.message or "run failed"


@dg.run_failure_sensor(
    name="pipeline_failure_alert",
    description="Raises an alert about the pipeline itself when a run of this code location fails.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def pipeline_failure_alert(context: dg.RunFailureSensorContext, postgres: PostgresResource) -> None:
    run = context.dagster_run
    with postgres.get_connection() as conn:
        alert = raise_pipeline_alert(
            conn, job_name=run.job_name, run_id=run.run_id, error=_failure_text(context)
        )
    context.log.info(
        f"pipeline alert {alert.alert_id} for failed run {run.run_id} of {run.job_name}:"
        f" {alert.outcome}"
    )


@dg.op(out=dg.Out(dict))
def maintain_log_partitions(
    context: dg.OpExecutionContext, postgres: PostgresResource
) -> dg.Output[dict[str, int]]:
    """Create delivery_log's coming daily partitions, then drop those past the retention."""
    retention_days = load_settings().log_retention_days
    with postgres.guarded_url() as url:
        changes = log_partitions.maintain(url, retention_days)
    context.log.info(
        f"delivery_log partitions: created {', '.join(changes.created) or 'none'};"
        f" dropped {', '.join(changes.dropped) or 'none'} (retention {retention_days} days)"
    )
    counts = {"created": len(changes.created), "dropped": len(changes.dropped)}
    metadata: dict[str, dg.RawMetadataValue] = dict(counts)
    metadata["retention_days"] = retention_days
    metadata["created_partitions"] = ", ".join(changes.created) or "-"
    metadata["dropped_partitions"] = ", ".join(changes.dropped) or "-"
    return dg.Output(counts, metadata=metadata)


@dg.job(
    name="log_partitions",
    description="Create delivery_log's daily partitions ahead and drop the expired ones.",
    tags=tags.MAINTENANCE,
)
def log_partitions_job() -> None:
    maintain_log_partitions()


@dg.schedule(
    name="log_partitions",
    job=log_partitions_job,
    cron_schedule="5 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 00:05 UTC: drop delivery_log partitions past the retention and create"
    " the next days', when either is due (one catalog query).",
)
def log_partitions_schedule(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource
) -> dg.RunRequest | dg.SkipReason:
    retention_days = load_settings().log_retention_days
    with postgres.get_connection() as conn:
        if not due.log_partitions_due(conn, retention_days, log_partitions.DAYS_AHEAD):
            return dg.SkipReason(
                f"no delivery_log partition to create or past {retention_days} days"
            )
    day = context.scheduled_execution_time.astimezone(UTC).strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"log_partitions:{day}")


def build(parts: Partitions) -> dg.Definitions:
    delivery_report = dg.asset(
        name="delivery_report",
        partitions_def=parts.hourly,
        group_name=_GROUP,
        deps=["delivery_log"],
        description="Per hour: delivery success by channel and webhook, latency percentiles,"
        " retries and dead letters (from delivery_log).",
    )(_delivery_report)
    response_sla_report = dg.asset(
        name="response_sla_report",
        partitions_def=parts.hourly,
        group_name=_GROUP,
        deps=["alerts"],
        description="Per hour: time to acknowledge the alerts raised in that hour, per severity,"
        " against the targets CRITICAL 5 min and WARNING 15 min.",
    )(_response_sla_report)
    reports_job = dg.define_asset_job(
        "reports_hourly",
        selection=["delivery_report", "response_sla_report"],
        tags=tags.REPORT,
    )

    reports_hourly = hourly_due_schedule(
        name="reports_hourly",
        job=reports_job,
        partitions=parts.hourly,
        minute=15,
        description="Report the previous hour at minute 15 when something was logged or raised.",
        run_key="reports",
        is_due=due.reports_due,
        nothing="nothing delivered, logged or raised",
    )

    return dg.Definitions(
        assets=[delivery_report, response_sla_report],
        jobs=[reports_job, log_partitions_job],
        schedules=[reports_hourly, log_partitions_schedule],
        sensors=[pipeline_failure_alert],
    )
