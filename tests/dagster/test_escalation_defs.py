"""The escalate job and its schedule, and the escalation report, on a real database."""

import dagster as dg
import psycopg

from alert_delivery.defs import escalation, resources
from alert_delivery.escalation import add_route
from tests.support.alerting import add_webhook, alert, queue_rows


def definitions() -> dg.Definitions:
    # postgres resource without a URL: ALERT_DELIVERY_DATABASE_URL, set by the db_url fixture.
    return dg.Definitions.merge(resources.defs, escalation.defs)


def test_definitions_load() -> None:
    defs = definitions()
    assert defs.resolve_job_def("escalate").tags["alert_delivery/kind"] == "escalation"
    [sensor] = defs.sensors or []
    assert sensor.name == "escalation_due"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "escalation_report" in keys


def _due_runs(db_url: str) -> list[dg.RunRequest]:
    with dg.build_sensor_context(
        resources={"postgres": resources.PostgresResource(database_url=db_url)}
    ) as context:
        result = escalation.escalation_due(context)
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or [])


def test_escalate_job_sends_and_the_report_lists_it(conn: psycopg.Connection, db_url: str) -> None:
    add_webhook(conn, "slack", "slack")
    add_webhook(conn, "pager", "pagerduty")
    add_route(conn, "on-call", webhooks=["pager"])
    assert _due_runs(db_url) == []
    warning = alert(conn, severity="WARNING", operation_type="commit", title="commit slow")
    # WARNING escalates after 10 minutes: nothing due yet.
    assert _due_runs(db_url) == []
    critical = alert(conn, severity="CRITICAL")
    [request] = _due_runs(db_url)
    assert request.run_key is not None and request.run_key.startswith("escalate:m")
    defs = definitions()
    instance = dg.DagsterInstance.ephemeral()

    result = defs.resolve_job_def("escalate").execute_in_process(
        instance=instance,
        run_config={"ops": {"escalate_overdue": {"config": {"interval_s": 300}}}},
    )
    assert result.success
    assert result.output_for_node("escalate_overdue") == {
        "released": 0,
        "sent": 1,
        "queued": 1,
        "stopped": 0,
    }
    [row] = queue_rows(conn, event="escalate")
    assert (row["alert_id"], row["webhook_name"]) == (critical.alert_id, "pager")
    # Sent: the next level waits for the interval, so the sensor launches nothing.
    assert _due_runs(db_url) == []
    again = defs.resolve_job_def("escalate").execute_in_process(instance=instance)
    assert again.output_for_node("escalate_overdue")["sent"] == 0

    materialized = dg.materialize(
        [escalation.escalation_report],
        resources={"postgres": resources.PostgresResource()},
        instance=instance,
    )
    assert materialized.success
    [event] = materialized.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert (meta["open"], meta["stopped"], meta["levels_sent"]) == (1, 0, 1)
    [record] = meta["escalations"].records
    assert record.data["alert_id"] == critical.alert_id
    assert record.data["state"] == "open"
    assert (record.data["reason"], record.data["level"]) == ("unacknowledged", 1)
    assert record.data["stop_reason"] == "-"
    assert warning.alert_id not in {r.data["alert_id"] for r in meta["escalations"].records}
    [route] = meta["routes"].records
    assert route.data["targets"] == "pager"
    assert route.data["matches"] == "(everything)"


def test_bad_policy_fails_the_run_naming_the_field(db_url: str) -> None:
    result = (
        definitions()
        .resolve_job_def("escalate")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            run_config={"ops": {"escalate_overdue": {"config": {"max_level": 9}}}},
            raise_on_error=False,
        )
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "max_level: must be between 1 and 5, got 9" in str(failure.step_failure_data.error)


def test_the_job_releases_alerts_whose_silence_ended(conn: psycopg.Connection, db_url: str) -> None:
    from alert_delivery.alerting import add_silence

    add_webhook(conn, "slack", "slack")
    silence = add_silence(
        conn, operation_type="merge", alert_type="ALL", minutes=60, reason="deploy"
    )
    held = alert(conn, severity="CRITICAL")
    assert held.outcome == "silenced"
    # Held by a live silence: nothing to release, and a held alert does not escalate.
    assert _due_runs(db_url) == []
    conn.execute(
        "UPDATE alert_delivery.silences SET starts_at = now() - interval '2 hours',"
        " ends_at = now() - interval '1 minute' WHERE silence_id = %s",
        (silence,),
    )
    assert len(_due_runs(db_url)) == 1
    result = (
        definitions()
        .resolve_job_def("escalate")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral())
    )
    counts = result.output_for_node("escalate_overdue")
    # Released, notified, and (CRITICAL: escalate at once) escalated to its own route.
    assert (counts["released"], counts["sent"], counts["queued"]) == (1, 1, 1)
    assert [r["event"] for r in queue_rows(conn)] == ["trigger", "escalate"]
