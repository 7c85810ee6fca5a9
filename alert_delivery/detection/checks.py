"""Data-quality checks behind the Dagster asset checks: each returns the offending items."""

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from alert_delivery.db import query
from alert_delivery.detection.rows import MAX_FUTURE


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    offenders: tuple[str, ...] = ()


def percentile_ordering(conn: psycopg.Connection) -> CheckOutcome:
    bad = tuple(str(r[0]) for r in conn.execute(query("detection", "check_percentile_ordering")))
    text = "p50 <= p95 <= p99 for every baseline" if not bad else f"out of order: {', '.join(bad)}"
    return CheckOutcome("percentile_ordering", not bad, text, bad)


def minimum_samples(conn: psycopg.Connection, min_samples: int = 10) -> CheckOutcome:
    rows = conn.execute(query("detection", "check_min_samples"), {"min_samples": min_samples})
    bad = tuple(str(r[0]) for r in rows)
    text = (
        f"every baseline has >= {min_samples} samples"
        if not bad
        else f"fewer than {min_samples} samples: {', '.join(bad)}"
    )
    return CheckOutcome("minimum_samples", not bad, text, bad)


def no_future_timestamps(conn: psycopg.Connection, now: datetime | None = None) -> CheckOutcome:
    limit = (now or datetime.now(UTC)) + MAX_FUTURE
    row = conn.execute(query("detection", "check_future_metrics"), {"limit": limit}).fetchone()
    count = int(row[0]) if row else 0
    text = "no metric is recorded in the future" if not count else f"{count} future metrics"
    return CheckOutcome("no_future_timestamps", count == 0, text, (str(count),) if count else ())


def anomalies_reference_metrics(
    conn: psycopg.Connection, partition_start: datetime
) -> CheckOutcome:
    rows = conn.execute(query("detection", "check_anomaly_metrics"), {"start": partition_start})
    bad = tuple(str(r[0]) for r in rows)
    text = (
        "every anomaly points at a metric of its operation and hour"
        if not bad
        else f"anomalies without a matching metric: {', '.join(bad)}"
    )
    return CheckOutcome("anomalies_reference_metrics", not bad, text, bad)
