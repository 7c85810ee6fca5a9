"""The code location as the tests load it: partitions from a fixed start, no wall clock."""

from datetime import UTC, datetime
from functools import cache

import dagster as dg

from alert_delivery.config import load_settings
from alert_delivery.definitions import load_definitions

START = "2026-01-01"
LOADED_AT = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


@cache
def defs() -> dg.Definitions:
    settings = load_settings({"ALERT_DELIVERY_PARTITIONS_START": START})
    return load_definitions(settings, now=LOADED_AT)


def asset(key: str) -> dg.AssetsDefinition:
    return defs().get_assets_def(key)
