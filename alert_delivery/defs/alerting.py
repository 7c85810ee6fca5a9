"""Dagster definitions for alerting: the hourly ``alerts`` asset (a thin wrapper).

Hours within the historical horizon (``ALERT_DELIVERY_HISTORICAL_HORIZON``, default 2 h) go
through ``alerts_from_partition`` as live; older hours (a backfill) are raised as historical and
summarised in one digest alert per run (``alert_delivery.detection.backfill``).
"""

from datetime import UTC, datetime

import dagster as dg

from alert_delivery.alerting import alerts_from_partition
from alert_delivery.config import load_settings
from alert_delivery.defs.partitions import Partitions, hours
from alert_delivery.defs.resources import PostgresResource
from alert_delivery.detection import backfill
from alert_delivery.inputs import parse_time


class AlertsConfig(dg.Config):
    now: str = ""
    """ISO timestamp the historical horizon counts back from; empty means the run's start."""


def _alerts(
    context: dg.AssetExecutionContext, config: AlertsConfig, postgres: PostgresResource
) -> dg.MaterializeResult[None]:
    now = (
        parse_time(config.now, where="now", require_zone=True) if config.now else datetime.now(UTC)
    )
    horizon_s = load_settings().historical_horizon_s
    outcomes: dict[str, int] = {}
    raised = notified = repeated = resolved = released = 0
    errors: list[str] = []
    alert_ids: list[int] = []
    historical = backfill.HistoricalSummary()
    for start, end in hours(context.partition_time_window):
        with postgres.get_connection() as conn:
            if backfill.is_historical(end, now, horizon_s):
                backfill.raise_historical_hour(conn, start, end, historical)
                continue
            result = alerts_from_partition(conn, start, end)
        raised += result.raised
        notified += result.outcomes["notified"]
        repeated += result.outcomes["repeated"]
        resolved += len(result.resolved)
        released += result.released
        errors += result.errors
        alert_ids += result.alert_ids
        for name, count in result.outcomes.items():
            outcomes[name] = outcomes.get(name, 0) + count
    digest_id = None
    if historical.hours:
        with postgres.get_connection() as conn:
            digest_id = backfill.raise_digest(conn, historical)
        errors += historical.errors
    for error in errors:
        context.log.warning("alert rejected: %s", error)
    return dg.MaterializeResult(
        metadata={
            "raised": dg.MetadataValue.int(raised),
            "notified": dg.MetadataValue.int(notified),
            "suppressed": dg.MetadataValue.int(raised - notified - repeated),
            "resolved": dg.MetadataValue.int(resolved),
            "released": dg.MetadataValue.int(released),
            "rejected": dg.MetadataValue.int(len(errors)),
            "outcomes": dg.MetadataValue.json(dict(sorted(outcomes.items()))),
            "alert_ids": dg.MetadataValue.json(alert_ids[:100]),
            "historical_hours": dg.MetadataValue.int(len(historical.hours)),
            "historical_alerts": dg.MetadataValue.int(len(historical.alert_ids)),
            "historical_outcomes": dg.MetadataValue.json(dict(sorted(historical.outcomes.items()))),
            "digest_alert_id": dg.MetadataValue.text(str(digest_id) if digest_id else "-"),
        }
    )


def build(parts: Partitions) -> dg.Definitions:
    alerts = dg.asset(
        key="alerts",
        partitions_def=parts.hourly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        # By key, so alerting never imports detection code.
        deps=[dg.AssetKey("anomalies"), dg.AssetKey("correlations")],
        group_name="alerting",
        kinds={"postgres"},
        description=(
            "Alerts for the hour's anomalies and bottlenecks: raised, deduplicated, silenced, "
            "inhibited, routed, grouped and enqueued for delivery in one transaction; detection "
            "alerts whose condition cleared are resolved; held alerts whose silence ended "
            "released. Hours older than the historical horizon are raised as historical and "
            "summarised in one BACKFILL_DIGEST alert per run."
        ),
    )(_alerts)
    return dg.Definitions(assets=[alerts])
