"""`alert-delivery status` on a real database (and a real Dagster instance directory)."""

import re
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    ScheduleInstigatorData,
    SensorInstigatorData,
    TickData,
    TickStatus,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from alert_delivery.cli import main
from alert_delivery.operations.status import human_duration
from tests.support.operations import (
    SECRET_TOKEN,
    Sql,
    add_delivery,
    add_health,
    add_webhook,
    add_worker,
)


def run_status(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["status", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


def test_status_on_an_empty_database(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = Path(str(__import__("os").environ["ALERT_DELIVERY_HOME"]))
    assert run_status(capsys) == [
        "Queue depth:",
        "  pending           0  due now 0",
        "  in_flight         0  due now 0  expired leases 0",
        "  delivered         0",
        "  dead              0",
        "Oldest pending: none",
        "Degraded webhooks: none",
        "Live workers (heartbeat within 30s): 0",
        "Sensors and schedules: no Dagster instance configured"
        f" (no dagster.yaml in {home / 'dagster_home'})",
    ]


def test_status_shows_queue_webhooks_and_workers(
    conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = add_webhook(conn, "ops-slack", "slack")
    broken = add_webhook(conn, "pager", "pagerduty")
    add_health(conn, broken, breaker_state="open", consecutive_failures=5, status="unavailable")
    add_webhook(conn, "gone", "webhook", active=False, disabled_reason="410 Gone from receiver")
    first = add_delivery(
        conn,
        broken,
        created_at=Sql("now() - interval '125 seconds'"),
        attempts=3,
        last_error="HTTP 503 from receiver",
    )
    add_delivery(conn, hook, next_attempt_at=Sql("now() + interval '1 hour'"))
    add_delivery(conn, broken, status="dead")
    add_delivery(conn, hook, status="delivered")
    add_worker(conn, "w-1", hostname="box", pid=77, delivered=12, failed=1)
    add_worker(conn, "w-old", heartbeat_at=Sql("now() - interval '90 seconds'"))

    lines = run_status(capsys, "--no-dagster")
    assert lines[:5] == [
        "Queue depth:",
        "  pending           2  due now 1",
        "  in_flight         0  due now 0  expired leases 0",
        "  delivered         1",
        "  dead              1",
    ]
    assert re.fullmatch(
        rf"Oldest pending: delivery {first} to pager \(trigger\), age 2m 0[5-9]s, attempts 3,"
        r" due now",
        lines[5],
    ), lines[5]
    assert lines[6:] == [
        "  last error: HTTP 503 from receiver",
        "Degraded webhooks: 2",
        "  gone [webhook] disabled (410 Gone from receiver), health healthy, breaker closed,"
        " 0 consecutive failures, 0 pending, 0 dead",
        "  pager [pagerduty] active, health unavailable, breaker open,"
        " 5 consecutive failures, 1 pending, 1 dead",
        "Live workers (heartbeat within 30s): 1",
        "  w-1 on box pid 77, heartbeat 0s ago, delivered 12, failed 1",
    ]
    assert SECRET_TOKEN not in "\n".join(lines)


def _state(name: str, kind: InstigatorType, status: InstigatorStatus) -> InstigatorState:
    origin = RemoteInstigatorOrigin(
        RemoteRepositoryOrigin(
            InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__)),
            "__repository__",
        ),
        name,
    )
    data = (
        SensorInstigatorData(min_interval=5, sensor_type=None)
        if kind == InstigatorType.SENSOR
        else ScheduleInstigatorData(cron_schedule="*/5 * * * *")
    )
    return InstigatorState(origin, kind, status, data)


def test_status_lists_the_last_tick_of_sensors_and_schedules(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("DAGSTER_PG_URL", "unused: this dagster.yaml keeps SQLite storage")
    stamp = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        sensor = instance.add_instigator_state(
            _state("delivery_queue_sensor", InstigatorType.SENSOR, InstigatorStatus.RUNNING)
        )
        for offset, status, reason in (
            (0, TickStatus.SUCCESS, None),
            (30, TickStatus.SKIPPED, "no new rows"),
        ):
            instance.create_tick(
                TickData(
                    instigator_origin_id=sensor.instigator_origin_id,
                    instigator_name=sensor.instigator_name,
                    instigator_type=InstigatorType.SENSOR,
                    status=status,
                    timestamp=stamp + offset,
                    selector_id=sensor.selector_id,
                    skip_reason=reason,
                    run_ids=["run-1"] if status == TickStatus.SUCCESS else [],
                )
            )
        instance.add_instigator_state(
            _state("retry_sweep_schedule", InstigatorType.SCHEDULE, InstigatorStatus.STOPPED)
        )
    lines = run_status(capsys)
    ticks = lines[next(i for i, line in enumerate(lines) if line.startswith("Sensors and")) :]
    assert "  schedule retry_sweep_schedule [stopped] no ticks yet" in ticks
    assert (
        "  sensor   delivery_queue_sensor [running] last tick 2026-09-21 14:13:50Z skipped"
        " (no new rows)"
    ) in ticks
    # Declared in the code location but never ticked: listed from the definitions.
    assert "  sensor   pipeline_failure_alert [running] no ticks yet" in ticks
    assert ticks[0] == f"Sensors and schedules: {len(ticks) - 1}"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (65, "1m 05s"), (3600, "1h 00m"), (90061, "1d 1h"), (-3, "0s")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_status_reports_an_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERT_DELIVERY_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/x")
    assert main(["status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "alert-delivery: error: cannot connect to PostgreSQL at 127.0.0.1:1/x:"
        + err[0].split("127.0.0.1:1/x:", 1)[1]
    ]
    assert "pw" not in err[0]


def test_status_survives_a_broken_dagster_instance(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "dagster.yaml").write_text(
        "run_storage:\n  module: no_such_module_here\n  class: Nope\n"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_PG_URL", "unused")
    lines = run_status(capsys)
    assert lines[0] == "Queue depth:"
    assert lines[-1].startswith(
        f"Sensors and schedules: cannot read the Dagster instance in {tmp_path}: "
    )
    assert "no_such_module_here" in lines[-1]
