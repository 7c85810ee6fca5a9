"""Alerts from detection output: raised per anomaly and bottleneck, resolved when they clear."""

from datetime import UTC, datetime, timedelta

import psycopg

from alert_delivery.alerting import alerts_from_partition
from tests.support.alerting import add_default_webhooks, alert_row, kinds_for, queue_rows

H1 = datetime(2026, 3, 1, 10, tzinfo=UTC)
H2 = H1 + timedelta(hours=1)
H3 = H2 + timedelta(hours=1)


def add_anomaly(conn: psycopg.Connection, hour: datetime, op: str, severity: str) -> None:
    conn.execute(
        "INSERT INTO alert_delivery.anomalies (partition_start, partition_end, operation_type,"
        " anomaly_type, severity, z_score, p99_ratio, samples, observed_mean_ms,"
        " observed_p99_ms, baseline_mean_ms, baseline_stddev_ms, baseline_p99_ms, metric_id,"
        " duration_ms, baseline_ms) VALUES (%s, %s, %s, 'STATISTICAL', %s, 4.5, 2.0, 100,"
        " 900, 2000, 200, 50, 700, 77, 2100, 700)",
        (hour, hour + timedelta(hours=1), op, severity),
    )


def add_bottleneck(conn: psycopg.Connection, hour: datetime) -> None:
    conn.execute(
        "INSERT INTO alert_delivery.correlations (partition_start, window_start, window_end,"
        " operation_a, operation_b, pearson_r, samples, confidence, both_degraded,"
        " bottleneck_type, recommendation) VALUES (%s, %s, %s, 'commit', 'merge', 0.91, 168,"
        " 0.99, false, 'MERGE_PIPELINE_SATURATION', 'Scale merge workers')",
        (hour, hour - timedelta(days=7), hour),
    )


def test_partition_raises_then_a_later_partition_resolves(conn: psycopg.Connection) -> None:
    add_default_webhooks(conn)
    add_anomaly(conn, H1, "merge", "CRITICAL")
    add_anomaly(conn, H1, "commit", "WARNING")
    add_bottleneck(conn, H1)
    first = alerts_from_partition(conn, H1, H2)
    assert first.raised == 3 and first.outcomes["notified"] == 3 and not first.errors
    merge = next(i for i in first.alert_ids if alert_row(conn, i)["operation_type"] == "merge")
    row = alert_row(conn, merge)
    assert row["source"] == "detection" and row["partition_start"] == H1
    assert row["anomaly_id"] is not None
    assert row["payload"]["metric_id"] == 77 and row["payload"]["z_score"] == 4.5
    assert row["labels"] == {
        "source": "detection",
        "operation_type": "merge",
        "alert_type": row["alert_type"],
        "severity": "CRITICAL",
    }
    assert row["annotations"]["title"] == row["title"]
    assert kinds_for(conn, merge) == ["email", "mattermost", "slack"]

    # Re-running the same partition is idempotent: the open alerts absorb it.
    again = alerts_from_partition(conn, H1, H2)
    assert again.outcomes["deduplicated"] == 3 and again.resolved == []

    # Next hour only merge is still anomalous: commit and the bottleneck resolve.
    add_anomaly(conn, H2, "merge", "CRITICAL")
    second = alerts_from_partition(conn, H2, H3)
    assert second.outcomes["deduplicated"] == 1
    assert sorted(second.resolved) == sorted(i for i in first.alert_ids if i != merge)
    assert alert_row(conn, merge)["status"] == "firing"
    resolved = queue_rows(conn, event="resolve")
    assert {r["kind"] for r in resolved} == {"slack", "mattermost"}
    assert all(
        r["payload"]["text"].startswith("RESOLVED") for r in resolved if r["kind"] == "slack"
    )


def test_an_empty_partition_raises_nothing(conn: psycopg.Connection) -> None:
    result = alerts_from_partition(conn, H1, H2)
    assert result.raised == 0 and result.resolved == [] and result.released == 0
