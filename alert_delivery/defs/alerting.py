"""Dagster definitions for alerting: the hourly ``alerts`` asset (a thin wrapper)."""

import dagster as dg

from alert_delivery.alerting import alerts_from_partition
from alert_delivery.defs.partitions import HOURLY
from alert_delivery.defs.resources import PostgresResource


@dg.asset(
    key="alerts",
    partitions_def=HOURLY,
    # By key, so alerting never imports detection code.
    deps=[dg.AssetKey("anomalies"), dg.AssetKey("correlations")],
    group_name="alerting",
    kinds={"postgres"},
    description=(
        "Alerts for the hour's anomalies and bottlenecks: raised, deduplicated, silenced, "
        "inhibited, routed, grouped and enqueued for delivery in one transaction; detection "
        "alerts whose condition cleared are resolved; held alerts whose silence ended released."
    ),
)
def alerts(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult[None]:
    window = context.partition_time_window
    with postgres.get_connection() as conn:
        result = alerts_from_partition(conn, window.start, window.end)
    for error in result.errors:
        context.log.warning("alert rejected: %s", error)
    outcomes = dict(sorted(result.outcomes.items()))
    return dg.MaterializeResult(
        metadata={
            "raised": dg.MetadataValue.int(result.raised),
            "notified": dg.MetadataValue.int(result.outcomes["notified"]),
            "suppressed": dg.MetadataValue.int(
                result.raised - result.outcomes["notified"] - result.outcomes["repeated"]
            ),
            "resolved": dg.MetadataValue.int(len(result.resolved)),
            "released": dg.MetadataValue.int(result.released),
            "rejected": dg.MetadataValue.int(len(result.errors)),
            "outcomes": dg.MetadataValue.json(outcomes),
            "alert_ids": dg.MetadataValue.json(result.alert_ids[:100]),
        }
    )


defs = dg.Definitions(assets=[alerts])
