"""Detection assets in Dagster: definitions load, a real partition run, checks, schedules."""

import dagster as dg
import psycopg

from alert_delivery.defs.resources import PostgresResource
from alert_delivery.detection.synthetic import Spike
from tests.support.dagster import asset, defs
from tests.support.detection import HOUR, NOW, load, snapshot

LAST = NOW - HOUR
KEY = LAST.strftime("%Y-%m-%d-%H:%M")


def test_definitions_expose_the_detection_contract() -> None:
    keys = {key.to_user_string() for key in defs().resolve_all_asset_keys()}
    assert {"baselines", "anomalies", "correlations"} <= keys
    job = defs().resolve_job_def("detect_hourly")
    assert job.tags["alert_delivery/kind"] == "detection"
    assert job.partitions_def is not None
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "anomalies",
        "correlations",
        "alerts",
    }
    assert defs().resolve_schedule_def("baselines_daily").cron_schedule == "10 0 * * *"
    schedule = defs().resolve_schedule_def("detection_hourly")
    assert schedule.cron_schedule == "5 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_partition_run_detects_checks_and_is_idempotent(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        load(conn, rows_per_hour=30, spikes=[Spike("merge", LAST, 4.0)])
    resources = {"postgres": PostgresResource(database_url=db_url)}
    instance = dg.DagsterInstance.ephemeral()
    base = dg.materialize(
        [asset("baselines")],
        resources=resources,
        instance=instance,
        run_config={"ops": {"baselines": {"config": {"window_end": NOW.isoformat()}}}},
    )
    assert base.success
    (materialization,) = base.asset_materializations_for_node("baselines")
    assert materialization.metadata["updated"].value == 6
    assert "| merge |" in str(materialization.metadata["baselines"].value)
    checks = {e.check_name: e.passed for e in base.get_asset_check_evaluations()}
    assert checks == {"percentile_ordering": True, "minimum_samples": True}

    def run() -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [asset("anomalies"), asset("correlations")],
            partition_key=KEY,
            resources=resources,
            instance=instance,
        )

    first = run()
    assert first.success
    (found,) = first.asset_materializations_for_node("anomalies")
    assert found.metadata["critical"].value == 1
    assert "| merge | CRITICAL | COMBINED |" in str(found.metadata["top_anomalies"].value)
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {"no_future_timestamps": True, "anomalies_reference_metrics": True}
    (corr,) = first.asset_materializations_for_node("correlations")
    assert corr.metadata["pairs"].value == 15

    with psycopg.connect(db_url) as conn:
        query = b"SELECT anomaly_id, severity, detected_at FROM alert_delivery.anomalies"
        before = conn.execute(query).fetchall()
        assert run().success
        assert conn.execute(query).fetchall() == before
        assert [row[1] for row in before] == ["CRITICAL"]


def test_backfill_through_dagster_equals_live_runs(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        spikes = [Spike("merge", NOW - 2 * HOUR, 4.0), Spike("commit", LAST, 3.0)]
        load(conn, rows_per_hour=20, spikes=spikes)
    resources = {"postgres": PostgresResource(database_url=db_url)}
    instance = dg.DagsterInstance.ephemeral()
    keys = [(NOW - k * HOUR).strftime("%Y-%m-%d-%H:%M") for k in (3, 2, 1)]

    def run_all(order: list[str]) -> None:
        for key in order:
            result = dg.materialize(
                [asset("anomalies"), asset("correlations")],
                partition_key=key,
                resources=resources,
                instance=instance,
            )
            assert result.success

    run_all(keys)
    with psycopg.connect(db_url, autocommit=True) as conn:
        live = snapshot(conn)
        assert {row[2] for row in live["anomalies"]} >= {"merge", "commit"}
        for table in ("anomalies", "correlations", "metric_rollups_hourly", "baseline_versions"):
            conn.execute(f"DELETE FROM alert_delivery.{table}".encode())
    run_all(keys[::-1])
    with psycopg.connect(db_url) as conn:
        assert snapshot(conn) == live
