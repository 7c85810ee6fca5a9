"""A backfill of an hour range: one run, the same alerts as live runs (timed at their hour),
historical ones annotated, and one digest alert for the run."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from alert_delivery.defs.resources import PostgresResource
from tests.support.alerting import add_default_webhooks
from tests.support.dagster import asset

FIRST = datetime(2026, 3, 1, 10, tzinfo=UTC)
KEYS = [(FIRST + timedelta(hours=i)).strftime("%Y-%m-%d-%H:%M") for i in range(3)]


def test_one_run_raises_historical_alerts_and_one_digest(
    conn: psycopg.Connection, db_url: str
) -> None:
    add_default_webhooks(conn)
    for i, op in enumerate(["merge", "commit", "push"]):
        start = FIRST + timedelta(hours=i)
        conn.execute(
            "INSERT INTO alert_delivery.anomalies (partition_start, partition_end, operation_type,"
            " anomaly_type, severity, z_score, samples, observed_mean_ms, observed_p99_ms,"
            " baseline_mean_ms, baseline_stddev_ms, baseline_p99_ms)"
            " VALUES (%s, %s, %s, 'STATISTICAL', 'WARNING', 4.1, 90, 800, 1900, 200, 40, 600)",
            (start, start + timedelta(hours=1), op),
        )
    result = dg.materialize(
        [asset("alerts")],
        resources={"postgres": PostgresResource(database_url=db_url)},
        tags={
            "dagster/asset_partition_range_start": KEYS[0],
            "dagster/asset_partition_range_end": KEYS[-1],
        },
        # A day later: every hour is beyond the 2 h horizon.
        run_config={"ops": {"alerts": {"config": {"now": "2026-03-02T10:00:00+00:00"}}}},
    )
    assert result.success
    # One run, one materialization per hour of the range.
    events = result.asset_materializations_for_node("alerts")
    assert sorted(e.partition or "" for e in events) == KEYS
    materialized = events[0]
    assert materialized.metadata["historical_hours"].value == 3
    assert materialized.metadata["historical_alerts"].value == 3
    rows = conn.execute(
        "SELECT operation_type, partition_start, starts_at, annotations->>'historical',"
        " labels->>'alert_type' FROM alert_delivery.alerts ORDER BY alert_id"
    ).fetchall()
    detected = [r for r in rows if r[4] != "BACKFILL_DIGEST"]
    assert [(r[0], r[1], r[2], r[3]) for r in detected] == [
        (op, FIRST + timedelta(hours=i), FIRST + timedelta(hours=i), "true")
        for i, op in enumerate(["merge", "commit", "push"])
    ]
    [digest] = conn.execute(
        "SELECT severity, source, labels->>'hours', description FROM alert_delivery.alerts"
        " WHERE labels->>'alert_type' = 'BACKFILL_DIGEST'"
    ).fetchall()
    assert digest[:3] == ("INFO", "detection", "2026-03-01T10:00Z..2026-03-01T13:00Z")
    assert "3 historical hour(s)" in digest[3] and "3 anomalies" in digest[3]
