"""Dashboard views of 0005_operations.sql: exact results over rows inserted into 0001 tables."""

from decimal import Decimal

import psycopg
import pytest

from tests.support.operations import (
    Sql,
    add_alert,
    add_delivery,
    add_health,
    add_log,
    add_webhook,
    add_worker,
    insert,
    view,
)


def ago(seconds: int) -> Sql:
    return Sql(f"now() - interval '{seconds} seconds'")


def later(seconds: int) -> Sql:
    return Sql(f"now() + interval '{seconds} seconds'")


def hour_ago(hours: int) -> Sql:
    return Sql(f"date_trunc('hour', now()) - interval '{hours} hours'")


def add_baseline(conn: psycopg.Connection, op: str, p95: float, **cols: object) -> None:
    values = dict(
        operation_type=op,
        p50_ms=p95 / 2,
        p95_ms=p95,
        p99_ms=p95 * 2,
        mean_ms=p95 / 2,
        stddev_ms=1.0,
        samples=100,
        window_start=ago(7 * 86400),
        window_end=Sql("now()"),
        window_days=7,
    )
    insert(conn, "baselines", "operation_type", **{**values, **cols})


def add_rollup(conn: psycopg.Connection, op: str, hour: Sql, p95: float) -> None:
    insert(
        conn,
        "metric_rollups_hourly",
        "operation_type",
        operation_type=op,
        hour=hour,
        samples=50,
        mean_ms=p95 / 2,
        p50_ms=p95 / 2,
        p95_ms=p95,
        p99_ms=p95,
        max_ms=p95,
    )


def add_anomaly(conn: psycopg.Connection, op: str, start: Sql) -> None:
    insert(
        conn,
        "anomalies",
        "anomaly_id",
        partition_start=start,
        partition_end=Sql(f"({start}) + interval '1 hour'"),
        operation_type=op,
        anomaly_type="STATISTICAL",
        severity="WARNING",
        samples=10,
        observed_mean_ms=1,
        observed_p99_ms=1,
        baseline_mean_ms=1,
        baseline_stddev_ms=1,
        baseline_p99_ms=1,
    )


def add_run(conn: psycopg.Connection, **cols: object) -> int:
    values = {"window_days": 7, "window_end": Sql("now()"), **cols}
    return int(insert(conn, "baseline_runs", "run_id", **values))


def test_response_sla(conn: psycopg.Connection) -> None:
    def alert(severity: str, created: int, acked: int | None = None, **cols: object) -> None:
        extra = (
            {"acknowledged_at": ago(created - acked), "status": "acknowledged"}
            if (acked is not None)
            else {}
        )
        add_alert(conn, severity=severity, created_at=ago(created), **extra, **cols)

    alert("CRITICAL", 600, acked=120)  # met
    alert("CRITICAL", 1200, acked=600)  # breached: acknowledged late
    alert("CRITICAL", 600)  # breached: still firing past 5 min
    alert("CRITICAL", 60)  # open: within target
    alert("WARNING", 1800, acked=840)  # met
    alert("WARNING", 1800, status="resolved", resolved_at=ago(60))  # healed before anyone acked
    alert("INFO", 10)
    alert("CRITICAL", 8 * 86400, acked=3600)  # outside the 7-day window of v_response_sla

    states = view(conn, "v_response_sla_alerts", "alert_id")
    assert [(r["severity"], r["sla_state"], r["time_to_ack_s"]) for r in states] == [
        ("CRITICAL", "met", 120.0),
        ("CRITICAL", "breached", 600.0),
        ("CRITICAL", "breached", None),
        ("CRITICAL", "open", None),
        ("WARNING", "met", 840.0),
        ("WARNING", "resolved_unacknowledged", None),
        ("INFO", "no_target", None),
        ("CRITICAL", "breached", 3600.0),
    ]
    sla = {r["severity"]: r for r in view(conn, "v_response_sla", "severity")}
    crit = sla["CRITICAL"]
    assert (crit["target_s"], crit["alerts"], crit["acknowledged"]) == (300, 4, 2)
    assert (crit["met"], crit["breached"], crit["open"]) == (1, 2, 1)
    assert crit["compliance_pct"] == Decimal("33.33")
    assert (crit["p50_time_to_ack_s"], crit["max_time_to_ack_s"]) == (360.0, 600.0)
    warn = sla["WARNING"]
    assert (warn["target_s"], warn["alerts"], warn["met"], warn["breached"]) == (900, 2, 1, 0)
    assert warn["resolved_unacknowledged"] == 1
    assert warn["compliance_pct"] == Decimal("100.00")
    info = sla["INFO"]
    assert (info["target_s"], info["alerts"], info["compliance_pct"]) == (None, 1, None)


def test_queue_health(conn: psycopg.Connection) -> None:
    hook = add_webhook(conn, "h")
    add_delivery(conn, hook, created_at=ago(100), next_attempt_at=ago(5))
    add_delivery(conn, hook, attempts=2, next_attempt_at=later(300))
    expired = dict(status="in_flight", leased_by="w1")
    add_delivery(conn, hook, leased_until=ago(10), next_attempt_at=ago(10), **expired)
    add_delivery(conn, hook, leased_until=later(30), next_attempt_at=later(30), **expired)
    add_delivery(conn, hook, status="delivered", attempts=1)
    add_delivery(conn, hook, status="dead", attempts=8)
    rows = {r["status"]: r for r in view(conn, "v_queue_health", "status")}
    assert {s: r["depth"] for s, r in rows.items()} == {
        "pending": 2,
        "in_flight": 2,
        "delivered": 1,
        "dead": 1,
    }
    assert (rows["pending"]["due_now"], rows["in_flight"]["due_now"]) == (1, 1)
    assert rows["in_flight"]["expired_leases"] == 1
    assert rows["pending"]["oldest_age_s"] == pytest.approx(100, abs=5)
    assert (rows["dead"]["max_attempts"], rows["pending"]["avg_attempts"]) == (8, Decimal("1.00"))


def test_degraded_and_performance_of_webhooks(conn: psycopg.Connection) -> None:
    add_webhook(conn, "fine", "slack")
    degraded = add_webhook(conn, "slow", "slack")
    add_health(conn, degraded, status="degraded", total=10, succeeded=9, failed=1)
    broken = add_webhook(conn, "broken", "pagerduty")
    add_health(conn, broken, breaker_state="open", consecutive_failures=6, status="unavailable")
    add_delivery(conn, broken, status="dead")
    add_delivery(conn, broken)
    add_webhook(conn, "gone", "webhook", active=False, disabled_reason="410 Gone")
    rows = view(conn, "v_degraded_webhooks", "name")
    assert [
        (r["name"], r["health_status"], r["breaker_state"], r["dead_letters"], r["pending"])
        for r in rows
    ] == [
        ("broken", "unavailable", "open", 1, 1),
        ("gone", "healthy", "closed", 0, 0),
        ("slow", "degraded", "closed", 0, 0),
    ]
    assert rows[0]["consecutive_failures"] == 6
    assert rows[1]["disabled_reason"] == "410 Gone"

    for latency in (10.0, 20.0, 30.0):
        add_log(conn, degraded, "delivered", latency_ms=latency)
    add_log(conn, degraded, "failed", latency_ms=40.0)
    add_log(conn, degraded, "retry_scheduled", latency_ms=50.0)
    add_log(conn, degraded, "dead_lettered")  # dead-lettered by hand: no attempt, no latency
    add_log(conn, degraded, "delivered", latency_ms=999.0, created_at=ago(2 * 86400))
    perf = {r["name"]: r for r in view(conn, "v_webhook_performance", "name")}
    slow = perf["slow"]
    assert (slow["total"], slow["succeeded"], slow["success_rate_pct"]) == (10, 9, Decimal("90.00"))
    assert (slow["delivered_24h"], slow["failed_24h"]) == (3, 2)
    assert (slow["retries_24h"], slow["dead_lettered_24h"]) == (1, 1)
    assert slow["p50_latency_ms_24h"] == pytest.approx(30.0)
    assert slow["p95_latency_ms_24h"] == pytest.approx(48.0)
    fine = perf["fine"]
    assert (fine["total"], fine["success_rate_pct"], fine["delivered_24h"]) == (0, None, 0)
    assert fine["breaker_state"] == "closed"


def test_delivery_success_by_channel(conn: psycopg.Connection) -> None:
    slack = add_webhook(conn, "s", "slack")
    for _ in range(3):
        add_delivery(conn, slack, status="delivered", attempts=1)
    add_delivery(conn, slack, status="dead", attempts=8)
    add_delivery(conn, slack)
    add_delivery(conn, slack, status="dead", created_at=ago(2 * 86400))  # outside 24 h
    rows = {r["channel"]: r for r in view(conn, "v_delivery_success_by_channel", "channel")}
    assert set(rows) == {"slack", "mattermost", "pagerduty", "email", "webhook", "inbox"}
    s = rows["slack"]
    assert (s["deliveries"], s["delivered"], s["dead"], s["in_progress"]) == (5, 3, 1, 1)
    assert (s["retries"], s["success_rate_pct"]) == (7, Decimal("75.00"))
    assert (rows["email"]["deliveries"], rows["email"]["success_rate_pct"]) == (0, None)


def test_operation_performance_trend(conn: psycopg.Connection) -> None:
    add_baseline(conn, "merge", 100.0)
    add_rollup(conn, "merge", hour_ago(2), 100.0)
    add_rollup(conn, "merge", hour_ago(1), 150.0)
    add_rollup(conn, "merge", hour_ago(8 * 24), 500.0)  # older than 7 days
    add_rollup(conn, "commit", hour_ago(1), 40.0)
    rows = view(conn, "v_operation_performance_trend", "operation_type, hour")
    assert [
        (r["operation_type"], r["p95_ms"], r["p95_change_pct"], r["p95_vs_baseline_pct"])
        for r in rows
    ] == [
        ("commit", 40.0, None, None),
        ("merge", 100.0, None, Decimal("0.00")),
        ("merge", 150.0, Decimal("50.00"), Decimal("50.00")),
    ]


def test_alert_frequency_by_operation(conn: psycopg.Connection) -> None:
    add_alert(conn, operation_type="merge", severity="CRITICAL")
    add_alert(conn, operation_type="merge", severity="CRITICAL", occurrences=4)
    add_alert(conn, operation_type="merge", status="resolved", created_at=ago(2 * 86400))
    add_alert(conn, operation_type="commit", severity="INFO")
    add_alert(conn, operation_type="commit", status="resolved", created_at=ago(8 * 86400))
    rows = view(conn, "v_alert_frequency_by_operation", "operation_type")
    assert [
        (
            r["operation_type"],
            r["alerts_7d"],
            r["alerts_24h"],
            r["critical_7d"],
            r["warning_7d"],
            r["info_7d"],
            r["firing"],
            r["occurrences_7d"],
        )
        for r in rows
    ] == [("commit", 1, 1, 0, 0, 1, 1, 1), ("merge", 3, 2, 2, 1, 0, 2, 6)]


def test_silences_audit(conn: psycopg.Connection) -> None:
    silence = dict(reason="maintenance", created_by="ops")
    insert(
        conn,
        "silences",
        "silence_id",
        operation_type="merge",
        starts_at=ago(3600),
        ends_at=later(3600),
        **silence,
    )
    insert(
        conn,
        "silences",
        "silence_id",
        starts_at=ago(7200),
        ends_at=later(3600),
        expired_at=ago(5400),
        **silence,
    )
    insert(conn, "silences", "silence_id", starts_at=later(3600), ends_at=later(7200), **silence)
    insert(conn, "silences", "silence_id", starts_at=ago(7200), ends_at=ago(3600), **silence)
    add_alert(conn, operation_type="merge", created_at=ago(1800))
    add_alert(conn, operation_type="commit", created_at=ago(1800))
    add_alert(conn, operation_type="commit", created_at=ago(6000))
    rows = view(conn, "v_silences_audit", "silence_id")
    assert [(r["state"], r["effective_duration_s"], r["matching_alerts"]) for r in rows] == [
        ("active", 7200.0, 1),
        ("expired", 1800.0, 1),
        ("scheduled", 3600.0, 0),
        ("ended", 3600.0, 1),
    ]


def test_baseline_change_impact_and_health(conn: psycopg.Connection) -> None:
    run = add_run(conn, status="succeeded", finished_at=Sql("now()"))
    history = dict(run_id=run, new_p50_ms=1, new_p95_ms=1, new_p99_ms=1, new_mean_ms=1)
    insert(
        conn,
        "baseline_history",
        "history_id",
        operation_type="merge",
        recorded_at=ago(48 * 3600),
        **history,
    )
    insert(
        conn,
        "baseline_history",
        "history_id",
        operation_type="merge",
        old_p95_ms=1,
        p95_change_pct=-60.0,
        recorded_at=ago(12 * 3600),
        **history,
    )
    insert(
        conn,
        "baseline_history",
        "history_id",
        operation_type="commit",
        old_p95_ms=1,
        p95_change_pct=25.0,
        **history,
    )
    insert(
        conn,
        "baseline_history",
        "history_id",
        operation_type="branch",
        old_p95_ms=1,
        p95_change_pct=5.0,
        **history,
    )
    add_anomaly(conn, "merge", ago(30 * 3600))  # in the day before the -60 % change
    add_anomaly(conn, "merge", ago(6 * 3600))  # in the day after it
    rows = view(conn, "v_baseline_change_impact", "history_id")
    assert [
        (r["operation_type"], r["impact"], r["anomalies_24h_before"], r["anomalies_24h_after"])
        for r in rows
    ] == [
        ("merge", "initial", 0, 1),
        ("merge", "major", 1, 1),
        ("commit", "moderate", 0, 0),
        ("branch", "minor", 0, 0),
    ]
    assert {r["run_status"] for r in rows} == {"succeeded"}

    add_baseline(conn, "merge", 10.0, run_id=run)
    add_baseline(conn, "commit", 10.0, calculated_at=ago(30 * 3600))
    add_rollup(conn, "branch", hour_ago(1), 5.0)  # traffic, but no baseline yet
    add_rollup(conn, "merge", hour_ago(1), 5.0)
    health = view(conn, "v_baseline_health", "operation_type")
    assert [(r["operation_type"], r["state"], r["run_status"]) for r in health] == [
        ("branch", "missing", None),
        ("commit", "stale", None),
        ("merge", "fresh", "succeeded"),
    ]


def test_job_health(conn: psycopg.Connection) -> None:
    add_run(conn, status="succeeded", started_at=ago(120), finished_at=ago(60), updated=30)
    add_run(
        conn,
        status="failed",
        started_at=ago(50),
        finished_at=ago(40),
        failed=2,
        errors=Sql("""'[{"op": "a"}, {"op": "b"}]'::jsonb"""),
    )
    add_run(conn, status="succeeded", started_at=ago(8 * 86400), finished_at=ago(8 * 86400))
    add_worker(conn, "w-live", started_at=ago(300), delivered=7)
    add_worker(conn, "w-stale", heartbeat_at=ago(45))
    add_worker(conn, "w-stopped", stopped_at=ago(10))
    add_worker(conn, "w-ancient", stopped_at=ago(8 * 86400))
    rows = view(conn, "v_job_health", "component, name")
    assert [
        (r["component"], r["status"], r["succeeded"], r["failed"], r["errors"]) for r in rows
    ] == [
        ("baseline_run", "succeeded", 30, 0, 0),
        ("baseline_run", "failed", 0, 2, 2),
        ("worker", "live", 7, 0, 0),
        ("worker", "stale", 0, 0, 0),
        ("worker", "stopped", 0, 0, 0),
    ]
    assert rows[0]["duration_s"] == pytest.approx(60.0)


def test_system_health(conn: psycopg.Connection) -> None:
    def health() -> dict[str, object]:
        return view(conn, "v_system_health", "health")[0]

    empty = health()
    assert empty["health"] == "ok"
    assert (empty["pending"], empty["dead_letters"], empty["live_workers"]) == (0, 0, 0)
    assert empty["last_baseline_status"] is None

    add_alert(conn, severity="CRITICAL")  # before any webhook exists, so nothing is enqueued
    add_alert(conn, severity="WARNING", status="acknowledged")
    hook = add_webhook(conn, "h")
    add_delivery(conn, hook, created_at=ago(30))
    add_worker(conn, "w1")
    add_run(conn, status="succeeded", finished_at=Sql("now()"))
    now_ok = health()
    assert now_ok["health"] == "ok"
    assert (now_ok["pending"], now_ok["live_workers"], now_ok["firing"]) == (1, 1, 1)
    assert (now_ok["critical_firing"], now_ok["acknowledged"]) == (1, 1)

    add_delivery(conn, hook, status="dead")
    assert (health()["health"], health()["dead_letters"]) == ("degraded", 1)

    add_run(conn, status="failed")
    assert (health()["health"], health()["last_baseline_status"]) == ("critical", "failed")
