"""Partitions shared by detection, alerting and report assets (one object, so dependencies line up).

Built when the definitions load (``alert_delivery.definitions``), never at import: the first
partition comes from ``ALERT_DELIVERY_PARTITIONS_START`` or defaults to 7 days before the current
UTC day, so the UI shows a week of hours to backfill instead of every hour since 2025.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from alert_delivery.config import Settings, partitions_start_at
from alert_delivery.defs.resources import PostgresResource


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


def hourly_due_schedule(
    *,
    name: str,
    job: "dg.UnresolvedAssetJobDefinition",  # quoted: dagster resolves this name lazily
    partitions: dg.HourlyPartitionsDefinition,
    minute: int,
    description: str,
    run_key: str,
    is_due: Callable[[psycopg.Connection, datetime, datetime], bool],
    nothing: str,
) -> dg.ScheduleDefinition:
    """Run the previous hour's partition at ``minute`` past, only when ``is_due`` finds work in
    it (an idle system launches nothing); otherwise skip, saying ``nothing``."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=f"{minute} * * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def schedule(
        context: dg.ScheduleEvaluationContext, postgres: PostgresResource
    ) -> dg.RunRequest | dg.SkipReason:
        at = context.scheduled_execution_time.astimezone(UTC)
        start = at.replace(minute=0, second=0, microsecond=0) - HOUR
        key = start.strftime("%Y-%m-%d-%H:%M")
        if not partitions.has_partition_key(key):
            return dg.SkipReason(f"hour {key} is before the first partition")
        with postgres.get_connection() as conn:
            if not is_due(conn, start, start + HOUR):
                return dg.SkipReason(f"{nothing} in hour {key}")
        return dg.RunRequest(run_key=f"{run_key}:{key}", partition_key=key)

    return schedule
