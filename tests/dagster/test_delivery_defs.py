"""Dagster driver: definitions load, the sensor plans runs, deliver_pending and replay_dead run."""

import logging

import dagster as dg
import psycopg

from alert_delivery.config import Settings
from alert_delivery.defs.delivery import (
    WebhookSenderResource,
    deliver_pending,
    delivery_queue_sensor,
    replay_dead,
    retry_sweep,
)
from alert_delivery.defs.resources import PostgresResource
from alert_delivery.delivery.registry import add_webhook
from tests.support.dagster import defs
from tests.support.delivery import delivery_env, enqueue, queue_rows
from tests.support.receivers import Receiver, always, serve

__all__ = ["delivery_env"]


def _resources(db_url: str) -> dict[str, object]:
    return {
        "postgres": PostgresResource(database_url=db_url),
        "webhook_sender": WebhookSenderResource(read_timeout_s=1.0, connect_timeout_s=1.0),
    }


def test_definitions_load_with_delivery_jobs_sensor_and_schedule() -> None:
    for name in ("deliver_pending", "retry_sweep", "replay_dead"):
        assert defs().resolve_job_def(name).tags["alert_delivery/kind"] == "delivery"
    for name in ("delivery_queue_sensor", "retry_sweep_sensor"):
        sensor = defs().resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def _evaluate(db_url: str, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(cursor=cursor, resources=_resources(db_url)) as context:
        result = delivery_queue_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_sensor_launches_per_batch_and_respects_the_worker_grace(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    hook = add_webhook(
        db_url, name="s", kind="webhook", url="http://127.0.0.1:9/x", settings=delivery_env
    )
    assert _evaluate(db_url, None).run_requests == []
    ids = enqueue(conn, hook.webhook_id, [{"i": i} for i in range(3)])
    first = _evaluate(db_url, None)
    [req] = first.run_requests or []
    assert req.run_key == f"deliver:{ids[0]}-{ids[-1]}"
    assert req.tags["alert_delivery/first_id"] == str(ids[0])
    assert first.cursor == str(ids[-1])
    # Rows behind the cursor still pending (out-of-order commits, retries): launched again.
    again = _evaluate(db_url, first.cursor)
    [old] = again.run_requests or []
    assert old.run_key.startswith(f"deliver:{ids[0]}-{ids[-1]}:m")
    # A live worker: fresh rows are left to it for the grace period.
    conn.execute(
        "INSERT INTO alert_delivery.workers (worker_id, hostname, pid) VALUES ('w', 'h', 1)"
    )
    more = enqueue(conn, hook.webhook_id, [{"i": 9}])
    assert _evaluate(db_url, str(more[0] - 1)).run_requests == []
    conn.execute(
        "UPDATE alert_delivery.delivery_queue SET next_attempt_at = now() - interval '31 s'"
    )
    graced = _evaluate(db_url, str(more[0] - 1))
    assert next(r.run_key for r in graced.run_requests or []) == f"deliver:{more[0]}-{more[0]}"


def test_deliver_pending_run_delivers_and_reports_counts(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver(always(200))) as ok:
        a = add_webhook(db_url, name="a", kind="webhook", url=ok.url, settings=delivery_env)
        ids = enqueue(conn, a.webhook_id, [{"i": 1}, {"i": 2}])
        instance = dg.DagsterInstance.ephemeral()
        result = deliver_pending.execute_in_process(resources=_resources(db_url), instance=instance)
        assert result.success
        assert len(ok.requests) == 2
    counts = result.output_for_node("deliver_due_rows")
    assert counts == {
        "claimed": 2,
        "delivered": 2,
        "retrying": 0,
        "dead": 0,
        "deferred": 0,
        "throttled": 0,
    }
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    assert run.tags["alert_delivery/first_id"] == str(ids[0])
    assert run.tags["alert_delivery/delivered"] == "2"
    logged = conn.execute(
        "SELECT DISTINCT run_id FROM alert_delivery.delivery_log WHERE delivery_id = %s",
        (ids[0],),
    ).fetchall()
    assert logged == [(run.run_id,)]


def test_a_run_that_dead_letters_fails_with_warnings_and_counts_by_reason(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver(always(200))) as ok, serve(Receiver(always(404))) as bad:
        a = add_webhook(db_url, name="a", kind="webhook", url=ok.url, settings=delivery_env)
        b = add_webhook(db_url, name="b", kind="webhook", url=bad.url, settings=delivery_env)
        enqueue(conn, a.webhook_id, [{"i": 1}, {"i": 2}])
        enqueue(conn, b.webhook_id, [{"i": 3}, {"i": 4}])
        instance = dg.DagsterInstance.ephemeral()
        result = deliver_pending.execute_in_process(
            resources=_resources(db_url), instance=instance, raise_on_error=False
        )
        assert len(ok.requests) == 2
    assert not result.success, "a run that dead-letters is red in the UI"
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    assert data is not None and data.user_failure_data is not None
    assert "2 of 4 deliveries dead-lettered (b)" in (data.user_failure_data.description or "")
    metadata = data.user_failure_data.metadata
    assert metadata["dead: b: HTTP 404"].value == 2
    assert metadata["delivered"].value == 2
    warnings = [
        r.user_message
        for r in instance.all_logs(result.run_id)
        if r.level == logging.WARNING and "dead-lettered" in r.user_message
    ]
    assert warnings == ["webhook b: dead-lettered 2 x HTTP 404"]
    assert bad.url not in " ".join(warnings)
    # Its outcomes were recorded before it failed.
    assert {r["status"] for r in queue_rows(conn).values()} == {"delivered", "dead"}


def test_retry_sweep_and_replay_dead_jobs(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver(always(200))) as rx:
        hook = add_webhook(db_url, name="r", kind="webhook", url=rx.url, settings=delivery_env)
        ids = enqueue(conn, hook.webhook_id, [{"i": 1}, {"i": 2}])
        conn.execute(
            "UPDATE alert_delivery.delivery_queue SET status = 'dead', dead_at = now(),"
            " last_error = 'HTTP 500; retries exhausted'"
        )
        replayed = replay_dead.execute_in_process(
            resources=_resources(db_url),
            run_config={"ops": {"replay_dead_letters": {"config": {"webhook": "r"}}}},
        )
        assert replayed.output_for_node("replay_dead_letters") == 2
        swept = retry_sweep.execute_in_process(resources=_resources(db_url))
        assert swept.output_for_node("sweep_retries")["delivered"] == 2
        assert len(rx.requests) == 2
    assert {queue_rows(conn)[i]["status"] for i in ids} == {"delivered"}
