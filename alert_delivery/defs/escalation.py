"""Dagster driver of escalation: the ``escalate`` job when something is due, and its report.

The work is ``alert_delivery.escalation`` (PL/pgSQL underneath); these wrappers pass the policy
from run config and show what happened as metadata. The ``escalation_due`` sensor checks every
minute with one query (``sql/queries/due.sql``) whether ``escalate`` would release, stop, open
or send anything, and launches a run only then: no more 1,440 empty runs a day.
"""

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from alert_delivery.alerting import release_held
from alert_delivery.alerting.matchers import describe
from alert_delivery.defs import tags
from alert_delivery.defs.delivery import record_delivery_assets
from alert_delivery.defs.resources import PostgresResource
from alert_delivery.escalation import (
    EscalationAction,
    EscalationPolicy,
    list_escalations,
    list_routes,
    run_escalations,
)
from alert_delivery.operations import due

_GROUP = "operations"


class EscalateConfig(dg.Config):
    """The escalation policy; the schedule runs with these defaults."""

    interval_s: int = 600
    """Seconds between two levels of one escalation."""
    max_level: int = 5
    """Levels sent before an escalation stops by itself (1-5)."""
    stale_after_s: int = 1800
    """A delivery still pending this long escalates."""


def _actions_table(actions: Sequence[EscalationAction]) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "escalation_id": a.escalation_id,
                    "alert_id": a.alert_id,
                    "delivery_id": _cell(a.delivery_id, "string"),
                    "reason": a.reason,
                    "action": a.action,
                    "level": a.level,
                    "queued": a.queued,
                }
            )
            for a in actions
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("escalation_id", "int"),
                dg.TableColumn("alert_id", "int"),
                dg.TableColumn("delivery_id", "string"),
                dg.TableColumn("reason", "string"),
                dg.TableColumn("action", "string"),
                dg.TableColumn("level", "int"),
                dg.TableColumn("queued", "int"),
            ]
        ),
    )


@dg.op(out=dg.Out(dict))
def escalate_overdue(
    context: dg.OpExecutionContext, config: EscalateConfig, postgres: PostgresResource
) -> dg.Output[dict[str, int]]:
    """Release held alerts whose silence ended, then stop, open and send escalations."""
    policy = EscalationPolicy(
        interval_s=config.interval_s,
        max_level=config.max_level,
        stale_after_s=config.stale_after_s,
    )
    # Its own transaction: a failure here must not hold back escalations.
    with postgres.get_connection() as conn:
        released = release_held(conn)
    with postgres.get_connection() as conn:
        actions = run_escalations(conn, policy)
    sent = [a for a in actions if a.sent]
    counts = {
        "released": released,
        "sent": len(sent),
        "queued": sum(a.queued for a in sent),
        "stopped": sum(1 for a in actions if a.action.startswith("stopped")),
    }
    context.log.info(
        f"escalations: {counts['sent']} sent ({counts['queued']} queue rows),"
        f" {counts['stopped']} stopped; {released} held alert(s) released"
    )
    metadata: dict[str, dg.RawMetadataValue] = dict(counts)
    if counts["queued"]:
        record_delivery_assets(context, {"escalation_rows_queued": counts["queued"]})
    metadata["actions"] = _actions_table(actions)
    return dg.Output(counts, metadata=metadata)


@dg.job(
    description="Escalate unacknowledged alerts and stuck deliveries to the escalation route.",
    tags=tags.ESCALATION,
)
def escalate() -> None:
    escalate_overdue()


@dg.sensor(
    name="escalation_due",
    job=escalate,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch escalate when an escalation is due (unacknowledged past escalate-after,"
    " stale or near-dead deliveries, a level to send or stop) or a held alert can be released.",
)
def escalation_due(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult:
    with postgres.get_connection() as conn:
        work = due.escalation_due(conn, EscalationPolicy())
    if not work:
        return dg.SensorResult(skip_reason="nothing to escalate, stop or release")
    minute = int(time.time() // 60)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"escalate:m{minute}")])


def _cell(value: object, kind: str) -> str | int:
    """Table cells cannot be ``None``; times in seconds, long titles shortened."""
    if value is None:
        return "-"
    if kind == "int" and isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


_REPORT_COLUMNS = (
    ("escalation_id", "int"),
    ("state", "string"),
    ("alert_id", "int"),
    ("severity", "string"),
    ("operation_type", "string"),
    ("title", "string"),
    ("reason", "string"),
    ("delivery_id", "string"),
    ("level", "int"),
    ("last_sent_at", "string"),
    ("next_at", "string"),
    ("stop_reason", "string"),
)


@dg.asset(
    group_name=_GROUP,
    deps=["alerts", "delivery_queue"],
    description="Open and recently stopped escalations (alert, reason, level, next send, why"
    " stopped) and the escalation routes; with no matching route an escalation goes to the"
    " alert's own route.",
)
def escalation_report(postgres: PostgresResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    with postgres.get_connection() as conn:
        summary = list_escalations(conn)
        routes = list_routes(conn)
    records = []
    for row in summary.rows:
        cells = {name: _cell(getattr(row, name), kind) for name, kind in _REPORT_COLUMNS}
        if row.state == "stopped":
            cells["next_at"] = "-"
        records.append(dg.TableRecord(cells))
    return dg.MaterializeResult(
        metadata={
            "open": dg.MetadataValue.int(summary.open),
            "stopped": dg.MetadataValue.int(summary.stopped),
            "levels_sent": dg.MetadataValue.int(summary.sent),
            "escalations": dg.MetadataValue.table(
                records=records,
                schema=dg.TableSchema(
                    columns=[dg.TableColumn(name, kind) for name, kind in _REPORT_COLUMNS]
                ),
            ),
            "routes": dg.MetadataValue.table(
                records=[
                    dg.TableRecord(
                        {
                            "name": r.name,
                            "matches": describe(r.matchers),
                            "reasons": ", ".join(r.reasons),
                            "targets": ", ".join(r.webhooks + [f"all {k}" for k in r.target_kinds]),
                            "active": r.active,
                        }
                    )
                    for r in routes
                ],
                schema=dg.TableSchema(
                    columns=[
                        dg.TableColumn("name", "string"),
                        dg.TableColumn("matches", "string"),
                        dg.TableColumn("reasons", "string"),
                        dg.TableColumn("targets", "string"),
                        dg.TableColumn("active", "bool"),
                    ]
                ),
            ),
        }
    )


escalation_report_job = dg.define_asset_job(
    "escalation_report_hourly", selection=["escalation_report"], tags=tags.REPORT
)


@dg.schedule(
    name="escalation_report_hourly",
    job=escalation_report_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh the escalation report at minute 15 when an escalation opened, was sent"
    " or stopped in the last hour.",
)
def escalation_report_hourly(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource
) -> dg.RunRequest | dg.SkipReason:
    at = context.scheduled_execution_time.astimezone(UTC)
    with postgres.get_connection() as conn:
        if not due.escalation_report_due(conn, at - timedelta(hours=1)):
            return dg.SkipReason("no escalation changed in the last hour")
    return dg.RunRequest(run_key=f"escalation_report:{at:%Y-%m-%dT%H:%M}")


defs = dg.Definitions(
    jobs=[escalate, escalation_report_job],
    sensors=[escalation_due],
    schedules=[escalation_report_hourly],
    assets=[escalation_report],
)
