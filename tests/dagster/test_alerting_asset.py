"""The hourly ``alerts`` asset: loads in the merged definitions and materialises a partition."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from alert_delivery.defs.resources import PostgresResource
from tests.support.alerting import add_default_webhooks, queue_rows
from tests.support.dagster import asset, defs

HOUR = datetime(2026, 3, 1, 10, tzinfo=UTC)
LIVE_NOW = HOUR + timedelta(minutes=90)


def test_alerts_asset_is_hourly_and_depends_on_detection_by_key() -> None:
    graph = defs().resolve_asset_graph()
    node = graph.get(dg.AssetKey("alerts"))
    assert node.partitions_def == graph.get(dg.AssetKey("anomalies")).partitions_def
    assert node.parent_keys == {dg.AssetKey("anomalies"), dg.AssetKey("correlations")}


def test_materialising_a_partition_raises_routes_and_enqueues(
    conn: psycopg.Connection, db_url: str
) -> None:
    add_default_webhooks(conn)
    conn.execute(
        "INSERT INTO alert_delivery.anomalies (partition_start, partition_end, operation_type,"
        " anomaly_type, severity, z_score, samples, observed_mean_ms, observed_p99_ms,"
        " baseline_mean_ms, baseline_stddev_ms, baseline_p99_ms)"
        " VALUES (%s, %s, 'merge', 'STATISTICAL', 'CRITICAL', 5.1, 90, 800, 1900, 200, 40, 600)",
        (HOUR, HOUR + timedelta(hours=1)),
    )
    result = dg.materialize(
        [asset("alerts")],
        partition_key=HOUR.strftime("%Y-%m-%d-%H:%M"),
        resources={"postgres": PostgresResource(database_url=db_url)},
        # Half an hour after the hour ended: a live run, within the 2 h horizon.
        run_config={"ops": {"alerts": {"config": {"now": LIVE_NOW.isoformat()}}}},
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("alerts")
    metadata = materialization.metadata
    assert metadata["raised"].value == 1 and metadata["notified"].value == 1
    assert metadata["rejected"].value == 0
    assert {r["kind"] for r in queue_rows(conn)} == {"slack", "mattermost", "email"}
