"""Historical hours: what a backfill raises instead of paging one alert at a time.

A detection hour that ended longer ago than the horizon (``ALERT_DELIVERY_HISTORICAL_HORIZON``,
default 2 h) is historical: a backfill after an outage, not news. Its alerts are the same alerts
a live run of that hour raises (same labels, ``partition_start`` and ``starts_at`` = the hour),
annotated ``historical: "true"``; auto-resolve is skipped (an old hour says nothing about now).
One digest alert per run (``alert_type=BACKFILL_DIGEST``, severity INFO) lists the counts.

Plain Python over the public producer API (``alert_delivery.alerting``); no Dagster here.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from alert_delivery.alerting import raise_alert, raise_alerts
from alert_delivery.alerting.from_detection import SOURCE, anomaly_alert, bottleneck_alert
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

DIGEST_TYPE = "BACKFILL_DIGEST"
HISTORICAL = {"historical": "true"}


def is_historical(hour_end: datetime, now: datetime, horizon_s: float) -> bool:
    """The hour ended more than ``horizon_s`` before ``now``."""
    return hour_end <= now - timedelta(seconds=horizon_s)


@dataclass
class HistoricalSummary:
    """Counts over the historical hours of one run, for the digest."""

    hours: list[datetime] = field(default_factory=list)
    anomalies: int = 0
    bottlenecks: int = 0
    severities: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    alert_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def historical_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A detection alert's fields marked historical, timed at its hour rather than now()."""
    marked = dict(fields)
    marked["annotations"] = {**fields.get("annotations", {}), **HISTORICAL}
    marked["starts_at"] = fields["partition_start"]
    return marked


def raise_historical_hour(
    conn: psycopg.Connection, start: datetime, end: datetime, summary: HistoricalSummary
) -> None:
    """Raise the alerts of the historical hour [start, end) in the caller's transaction."""
    with conn.cursor(row_factory=dict_row) as cur:
        anomalies = cur.execute(
            query("alerting", "partition_anomalies"), {"start": start, "end": end}
        ).fetchall()
        bottlenecks = cur.execute(
            query("alerting", "partition_bottlenecks"), {"start": start, "end": end}
        ).fetchall()
    candidates = [historical_fields(anomaly_alert(r)) for r in anomalies]
    candidates += [historical_fields(bottleneck_alert(r)) for r in bottlenecks]
    summary.hours.append(start)
    summary.anomalies += len(anomalies)
    summary.bottlenecks += len(bottlenecks)
    if not candidates:
        return
    try:
        with conn.transaction():
            results = raise_alerts(conn, candidates)
    except InvalidInput:
        # All or nothing: find the bad ones, raise the rest one by one.
        results = []
        for fields in candidates:
            try:
                with conn.transaction():
                    results.append(raise_alert(conn, **fields))
            except InvalidInput as exc:
                summary.errors.append(f"{fields['operation_type']}/{fields['alert_type']}: {exc}")
    for fields in candidates:
        summary.severities[str(fields["severity"])] += 1
    for result in results:
        summary.outcomes[result.outcome] += 1
        if result.alert_id is not None:
            summary.alert_ids.append(result.alert_id)


def _hour(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def digest_alert(summary: HistoricalSummary) -> dict[str, Any]:
    """The one alert a run with historical hours raises; identity is the hour range, so a
    re-run of the same backfill deduplicates into it instead of paging again."""
    first, last = min(summary.hours), max(summary.hours)
    span = f"{_hour(first)}..{_hour(last + timedelta(hours=1))}"
    severities = ", ".join(f"{k} {v}" for k, v in sorted(summary.severities.items())) or "none"
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items())) or "none"
    description = (
        f"Backfill of {len(summary.hours)} historical hour(s) {span}: "
        f"{summary.anomalies} anomalies, {summary.bottlenecks} bottlenecks; "
        f"alerts by severity: {severities}; outcomes: {outcomes}"
        + (f"; {len(summary.errors)} rejected" if summary.errors else "")
        + ". Historical alerts carry the annotation historical=true."
    )
    return {
        "labels": {
            "source": SOURCE,
            "operation_type": "detection_backfill",
            "alert_type": DIGEST_TYPE,
            "severity": "INFO",
            "hours": span,
        },
        "annotations": {
            "title": f"Detection backfill {span}: {len(summary.alert_ids)} historical alert(s)",
            "description": description,
        },
        "partition_start": first,
        "details": {
            "hours": len(summary.hours),
            "anomalies": summary.anomalies,
            "bottlenecks": summary.bottlenecks,
            "severities": dict(summary.severities),
            "outcomes": dict(summary.outcomes),
            "alert_ids": summary.alert_ids[:100],
            "rejected": summary.errors[:20],
        },
    }


def raise_digest(conn: psycopg.Connection, summary: HistoricalSummary) -> int | None:
    """Raise the run's digest (nothing when its historical hours raised nothing); its id."""
    if not summary.hours or not (summary.alert_ids or summary.errors):
        return None
    [result] = raise_alerts(conn, [digest_alert(summary)])
    return result.alert_id
