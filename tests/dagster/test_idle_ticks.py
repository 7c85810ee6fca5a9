"""An idle system launches no runs: every sensor and schedule ticked 60 times (one simulated
hour, a tick a minute) on an empty database launches nothing; each launches once work is due."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from alert_delivery.defs.resources import PostgresResource
from tests.support.dagster import defs

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TICKS = 60


def _resources(db_url: str) -> dict[str, object]:
    return {"postgres": PostgresResource(database_url=db_url)}


def tick_everything(db_url: str, at: datetime) -> dict[str, list[dg.RunRequest]]:
    """One evaluation of every sensor and schedule of the code location at ``at``."""
    launched: dict[str, list[dg.RunRequest]] = {}
    location = defs()
    for sensor in location.sensors or []:
        if isinstance(sensor, dg.RunStatusSensorDefinition):
            continue  # fires on run failures, launches no runs
        with dg.build_sensor_context(resources=_resources(db_url), definitions=location) as context:
            data = sensor.evaluate_tick(context)
        launched[sensor.name] = list(data.run_requests or [])
    for schedule in location.schedules or []:
        with dg.build_schedule_context(
            resources=_resources(db_url),
            scheduled_execution_time=at,
            repository_def=location.get_repository_def(),
        ) as context:
            data = schedule.evaluate_tick(context)
        launched[schedule.name] = list(data.run_requests or [])
    return launched


def test_sixty_idle_ticks_launch_nothing(db_url: str) -> None:
    report: dict[str, int] = {}
    for i in range(TICKS):
        for name, requests in tick_everything(db_url, T0 + timedelta(minutes=i)).items():
            report[name] = report.get(name, 0) + len(requests)
    print("runs launched by 60 idle ticks:", report)
    assert set(report) == {
        "delivery_queue_sensor",
        "retry_sweep_sensor",
        "escalation_due",
        "baselines_daily",
        "detection_hourly",
        "reports_hourly",
        "escalation_report_hourly",
        "log_partitions",
    }
    assert sum(report.values()) == 0, report


def test_each_launches_when_work_is_due(conn: psycopg.Connection, db_url: str) -> None:
    from tests.support.alerting import add_webhook, alert

    hour = T0 - timedelta(hours=1)
    conn.execute(
        "INSERT INTO alert_delivery.performance_metrics (operation_type, duration_ms, status,"
        " recorded_at) VALUES ('merge', 120, 'success', %s)",
        (hour + timedelta(minutes=20),),
    )
    add_webhook(conn, "slack", "slack")
    critical = alert(conn, severity="CRITICAL")
    # A first attempt (the alert's), and a failed one due again.
    conn.execute(
        "INSERT INTO alert_delivery.delivery_queue (alert_id, webhook_id, event, payload,"
        " status, attempts, next_attempt_at)"
        " SELECT %s, webhook_id, 'resolve', '{}', 'pending', 2, now() - interval '1 s'"
        " FROM alert_delivery.webhooks WHERE name = 'slack'",
        (critical.alert_id,),
    )
    # Midnight + 10 min for baselines, minute 5 for detection, minute 15 for reports.
    day_after = T0.replace(hour=0) + timedelta(days=1, minutes=10)
    baselines = tick_everything(db_url, day_after)["baselines_daily"]
    assert [r.run_key for r in baselines] == ["baselines:2026-03-11"]
    at_5 = tick_everything(db_url, T0 + timedelta(minutes=5))
    assert [r.partition_key for r in at_5["detection_hourly"]] == ["2026-03-10-11:00"]
    assert len(at_5["delivery_queue_sensor"]) == 1
    assert len(at_5["retry_sweep_sensor"]) == 1
    # CRITICAL escalates at once.
    assert len(at_5["escalation_due"]) == 1
    conn.execute("UPDATE alert_delivery.delivery_log SET created_at = %s", (hour,))
    conn.execute("UPDATE alert_delivery.alerts SET created_at = %s", (hour,))
    at_15 = tick_everything(db_url, T0 + timedelta(minutes=15))
    assert [r.partition_key for r in at_15["reports_hourly"]] == ["2026-03-10-11:00"]


def test_a_live_worker_takes_fresh_rows_so_no_run_is_launched(
    conn: psycopg.Connection, db_url: str
) -> None:
    from tests.support.alerting import add_webhook, alert

    add_webhook(conn, "slack", "slack")
    alert(conn, severity="WARNING")
    conn.execute(
        "INSERT INTO alert_delivery.workers (worker_id, hostname, pid) VALUES ('w', 'h', 1)"
    )
    conn.execute(
        "UPDATE alert_delivery.delivery_queue SET attempts = 1, next_attempt_at = now()"
        " WHERE event = 'trigger' AND alert_id = (SELECT min(alert_id) FROM alert_delivery.alerts)"
    )
    launched = tick_everything(db_url, T0)
    assert launched["delivery_queue_sensor"] == []
    assert launched["retry_sweep_sensor"] == []
