"""The Dagster code location: merges what each ``defs`` module contributes."""

import dagster as dg

from alert_delivery.defs import alerting, delivery, detection, escalation, operations, resources

defs = dg.Definitions.merge(
    resources.defs,
    detection.defs,
    alerting.defs,
    delivery.defs,
    escalation.defs,
    operations.defs,
    dg.Definitions(executor=dg.in_process_executor),
)
