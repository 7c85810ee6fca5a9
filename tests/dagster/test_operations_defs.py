"""Operations' Dagster definitions: report assets materialised on a real database, and the
run-failure sensor raising an alert about a real failed run."""

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import psycopg
import pytest

from alert_delivery.config import load_settings
from alert_delivery.defs import operations
from alert_delivery.defs.partitions import partitions_for
from alert_delivery.defs.resources import PostgresResource
from tests.support.dagster import asset
from tests.support.operations import Sql, add_alert, add_log, add_webhook

HOUR = "2026-01-05-10:00"


def at(minute: int, second: int = 0) -> Sql:
    return Sql(f"timestamptz '2026-01-05 10:{minute:02d}:{second:02d}+00'")


def materialize(asset: dg.AssetsDefinition, db_url: str) -> dict[str, Any]:
    result = dg.materialize(
        [asset],
        partition_key=HOUR,
        resources={"postgres": PostgresResource(database_url=db_url)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    materialization = event.materialization
    assert materialization.partition == HOUR
    return {k: v.value for k, v in materialization.metadata.items()}


def test_definitions_load() -> None:
    defs = dg.Definitions.merge(
        operations.build(partitions_for(load_settings({}), datetime(2026, 3, 1, tzinfo=UTC))),
        dg.Definitions(
            resources={"postgres": PostgresResource(database_url="postgresql://unused/x")}
        ),
    )
    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {"delivery_report", "response_sla_report"} <= keys
    assert operations.pipeline_failure_alert.default_status == (dg.DefaultSensorStatus.RUNNING)


def test_delivery_report(conn: psycopg.Connection, db_url: str) -> None:
    slack = add_webhook(conn, "ops-slack", "slack")
    mail = add_webhook(conn, "ops-mail", "email")
    for latency in (10.0, 20.0, 30.0):
        add_log(conn, slack, "delivered", latency_ms=latency, created_at=at(5))
    # As the engine logs them: one row per attempt, under its outcome, with its latency.
    add_log(conn, slack, "retry_scheduled", latency_ms=40.0, created_at=at(6))
    add_log(conn, mail, "dead_lettered", latency_ms=100.0, created_at=at(7))
    add_log(conn, mail, "released", created_at=at(7))  # bookkeeping, not an attempt
    add_log(
        conn, slack, "delivered", latency_ms=5000.0, created_at=Sql(at(0) + " + interval '1 hour'")
    )
    add_log(
        conn, slack, "delivered", latency_ms=5000.0, created_at=Sql(at(0) + " - interval '1 s'")
    )

    meta = materialize(asset("delivery_report"), db_url)
    assert meta["success_rate"] == pytest.approx(0.6)
    assert (meta["delivered"], meta["failed_attempts"]) == (3, 2)
    assert (meta["retries"], meta["dead_lettered"]) == (1, 1)
    assert meta["latency_samples"] == 5
    assert meta["latency_p50_ms"] == pytest.approx(30.0)
    assert meta["latency_p95_ms"] == pytest.approx(88.0)
    channels = {r.data["channel"]: r.data for r in meta["by_channel"].records}
    assert channels == {
        "email": {
            "channel": "email",
            "success_rate": 0.0,
            "delivered": 0,
            "failed": 1,
            "retries": 0,
            "dead_lettered": 1,
        },
        "slack": {
            "channel": "slack",
            "success_rate": 0.75,
            "delivered": 3,
            "failed": 1,
            "retries": 1,
            "dead_lettered": 0,
        },
    }
    webhooks = {r.data["webhook"]: r.data for r in meta["by_webhook"].records}
    assert webhooks["ops-slack"]["p50_ms"] == pytest.approx(25.0)
    assert webhooks["ops-mail"]["p99_ms"] == pytest.approx(100.0)
    summary = meta["summary"]
    assert "Success rate **60.0%**" in summary
    assert "| slack | ops-slack | 75.0% | `███████▌··` | 3 | 1 | 1 | 0 | 25.0 | 38.5 |" in summary


def test_delivery_report_of_a_quiet_hour(db_url: str) -> None:
    meta = materialize(asset("delivery_report"), db_url)
    assert meta["delivered"] == 0 and meta["latency_samples"] == 0
    assert meta["by_webhook"].records == []
    assert "no delivery activity in this hour" in meta["summary"]


def test_response_sla_report(conn: psycopg.Connection, db_url: str) -> None:
    def ack(created: Sql, seconds: int) -> dict[str, Any]:
        return {
            "created_at": created,
            "status": "acknowledged",
            "acknowledged_at": Sql(f"{created} + interval '{seconds} seconds'"),
        }

    add_alert(conn, severity="CRITICAL", **ack(at(1), 120))
    add_alert(conn, severity="CRITICAL", **ack(at(2), 400))
    add_alert(conn, severity="CRITICAL", created_at=at(3))  # never acknowledged: breached
    add_alert(conn, severity="WARNING", **ack(at(4), 600))
    add_alert(conn, severity="INFO", created_at=at(5))
    add_alert(conn, severity="CRITICAL", **ack(Sql(at(59, 59) + " + interval '1 s'"), 10))

    meta = materialize(asset("response_sla_report"), db_url)
    assert (meta["alerts"], meta["breached"]) == (5, 2)
    rows = {r.data["severity"]: r.data for r in meta["by_severity"].records}
    assert rows["CRITICAL"] == {
        "severity": "CRITICAL",
        "target_s": 300,
        "alerts": 3,
        "acknowledged": 2,
        "met": 1,
        "breached": 2,
        "open": 0,
        "compliance": 0.333,
        "p50_time_to_ack_s": 260.0,
        "max_time_to_ack_s": 400.0,
    }
    assert (rows["WARNING"]["met"], rows["WARNING"]["compliance"]) == (1, 1.0)
    assert (rows["INFO"]["target_s"], rows["INFO"]["alerts"], rows["INFO"]["compliance"]) == (
        "-",
        1,
        "-",
    )
    assert "| CRITICAL | 5 min | 3 | 2 | 1 | 2 | 0 | 33.3% |" in meta["summary"]


@dg.op
def explode() -> None:
    raise RuntimeError("the disk is full")


@dg.job
def doomed() -> None:
    explode()


def test_run_failure_sensor_raises_a_pipeline_alert(conn: psycopg.Connection, db_url: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = doomed.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success

    def fire() -> None:
        context = dg.build_run_status_sensor_context(
            sensor_name="pipeline_failure_alert",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={"postgres": PostgresResource(database_url=db_url)},
        ).for_run_failure()
        operations.pipeline_failure_alert(context)

    fire()
    rows = conn.execute(
        b"SELECT source, operation_type, alert_type, severity, title, status, occurrences,"
        b" description, payload->>'run_id' FROM alert_delivery.alerts"
    ).fetchall()
    assert len(rows) == 1
    row = rows[0]
    assert row[:7] == (
        "pipeline",
        "dagster:doomed",
        "PIPELINE_FAILURE",
        "CRITICAL",
        "Dagster run of doomed failed",
        "firing",
        1,
    )
    assert row[7].startswith("step explode: RuntimeError: the disk is full")
    assert row[8] == result.run_id

    fire()  # the same job failing again while the alert is open: one alert, counted twice
    assert conn.execute(
        b"SELECT count(*), max(occurrences) FROM alert_delivery.alerts"
    ).fetchone() == (1, 2)


def test_run_failure_sensor_ticks_through_dagster(conn: psycopg.Connection, db_url: str) -> None:
    """The sensor as the daemon evaluates it: a first tick sets the cursor, a run fails, the next
    tick finds the failure in the instance's event log and raises the alert."""
    defs = dg.Definitions(jobs=[doomed], sensors=[operations.pipeline_failure_alert])
    repo = defs.get_repository_def()
    sensor = repo.get_sensor_def("pipeline_failure_alert")
    resources = {"postgres": PostgresResource(database_url=db_url)}
    with dg.instance_for_test() as instance:
        first = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, repository_def=repo, resources=resources)
        )
        assert conn.execute(b"SELECT count(*) FROM alert_delivery.alerts").fetchone() == (0,)
        result = doomed.execute_in_process(instance=instance, raise_on_error=False)
        sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, repository_def=repo, cursor=first.cursor, resources=resources
            )
        )
    rows = conn.execute(
        b"SELECT source, title, payload->>'run_id' FROM alert_delivery.alerts"
    ).fetchall()
    assert rows == [("pipeline", "Dagster run of doomed failed", result.run_id)]


def test_log_partitions_schedule_launches_only_when_a_partition_is_due(
    conn: psycopg.Connection, db_url: str
) -> None:
    resources = {"postgres": PostgresResource(database_url=db_url)}
    schedule = operations.log_partitions_schedule
    at = datetime.now(UTC)
    with dg.build_schedule_context(resources=resources, scheduled_execution_time=at) as context:
        idle = schedule.evaluate_tick(context)
    assert not idle.run_requests
    assert "no delivery_log partition" in (idle.skip_message or "")

    # The last day ahead is missing: due, one run for the day.
    [(last,)] = conn.execute(
        b"SELECT max(name) FROM alert_delivery.log_partitions() WHERE name LIKE 'delivery_log_p%'"
    ).fetchall()
    conn.execute(f"DROP TABLE alert_delivery.{last}".encode())
    with dg.build_schedule_context(resources=resources, scheduled_execution_time=at) as context:
        data = schedule.evaluate_tick(context)
    [request] = data.run_requests or []
    assert request.run_key == f"log_partitions:{at.strftime('%Y-%m-%d')}"

    result = operations.log_partitions_job.execute_in_process(
        resources=resources, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    assert result.output_for_node("maintain_log_partitions") == {"created": 1, "dropped": 0}
    assert operations.log_partitions_job.tags["alert_delivery/kind"] == "maintenance"
    names = [r[0] for r in conn.execute(b"SELECT name FROM alert_delivery.log_partitions()")]
    assert last in names
