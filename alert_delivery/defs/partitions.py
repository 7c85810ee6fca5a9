"""Partitions shared by detection, alerting and report assets (one object, so dependencies line up).

Built when the definitions load (``alert_delivery.definitions``), never at import: the first
partition comes from ``ALERT_DELIVERY_PARTITIONS_START`` or defaults to 7 days before the current
UTC day, so the UI shows a week of hours to backfill instead of every hour since 2025.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from alert_delivery.config import Settings, partitions_start_at


@dataclass(frozen=True)
class Partitions:
    hourly: dg.HourlyPartitionsDefinition
    daily: dg.DailyPartitionsDefinition


def build_partitions(start: datetime) -> Partitions:
    """Hourly and daily partitions (UTC) from ``start`` (a whole hour; daily from its day)."""
    return Partitions(
        hourly=dg.HourlyPartitionsDefinition(
            start_date=start.strftime("%Y-%m-%d-%H:%M"), timezone="UTC"
        ),
        daily=dg.DailyPartitionsDefinition(start_date=start.strftime("%Y-%m-%d"), timezone="UTC"),
    )


def partitions_for(settings: Settings, now: datetime) -> Partitions:
    return build_partitions(partitions_start_at(settings, now))


HOUR = timedelta(hours=1)


def hours(window: dg.TimeWindow) -> Iterator[tuple[datetime, datetime]]:
    """The hours of a partition window: one for a live run, many for a single-run backfill."""
    start = window.start.astimezone(UTC)
    end = window.end.astimezone(UTC)
    while start < end:
        yield start, start + HOUR
        start += HOUR
