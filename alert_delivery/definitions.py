"""The Dagster code location: merges what each ``defs`` module contributes.

Dagster loads ``defs`` (a ``@dg.definitions`` function) when the code location loads, not when
this module is imported: the hourly partitions start at ``ALERT_DELIVERY_PARTITIONS_START`` or 7
days before the current UTC day, read at that moment (``alert_delivery.config``). Tests and the
CLI call ``load_definitions`` with their own settings and clock.
"""

from datetime import UTC, datetime

import dagster as dg

from alert_delivery.config import Settings, load_settings
from alert_delivery.defs import alerting, delivery, detection, escalation, operations, resources
from alert_delivery.defs.partitions import partitions_for


def load_definitions(
    settings: Settings | None = None, now: datetime | None = None
) -> dg.Definitions:
    parts = partitions_for(settings or load_settings(), now or datetime.now(UTC))
    return dg.Definitions.merge(
        resources.defs,
        detection.build(parts),
        alerting.build(parts),
        delivery.defs,
        escalation.defs,
        operations.build(parts),
        dg.Definitions(executor=dg.in_process_executor),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions()
