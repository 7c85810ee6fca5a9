"""Unacknowledged alerts escalate after their rule's escalate-after, up to 5 levels, until someone
acknowledges or resolves them; the state is in PostgreSQL and survives a restart."""

import threading
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from alert_delivery.alerting import acknowledge, resolve
from alert_delivery.alerting.messages import render_alerts
from alert_delivery.escalation import EscalationPolicy, add_route, run_escalations
from tests.support.alerting import add_webhook, alert, log_events, queue_rows


@pytest.fixture
def hooks(conn: psycopg.Connection) -> dict[str, int]:
    """slack receives alerts (default rules); pager is only on the escalation route."""
    ids = {
        "slack": add_webhook(conn, "slack", "slack"),
        "pager": add_webhook(conn, "pager", "pagerduty"),
    }
    add_route(conn, "on-call", webhooks=["pager"])
    return ids


def escalations(conn: psycopg.Connection, alert_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT *, extract(epoch FROM next_at - last_sent_at) AS interval_s"
            " FROM alert_delivery.escalations WHERE alert_id = %s ORDER BY escalation_id",
            (alert_id,),
        ).fetchall()


def age(conn: psycopg.Connection, alert_id: int, seconds: float) -> None:
    """Pretend the alert was raised and notified ``seconds`` ago, and its trigger delivered."""
    conn.execute(
        "UPDATE alert_delivery.alerts SET created_at = created_at - make_interval(secs => %s)"
        " WHERE alert_id = %s",
        (seconds, alert_id),
    )
    conn.execute(
        "UPDATE alert_delivery.delivery_queue SET status = 'delivered', delivered_at = now(),"
        " created_at = created_at - make_interval(secs => %s) WHERE alert_ids @> ARRAY[%s::bigint]",
        (seconds, alert_id),
    )


def make_due(conn: psycopg.Connection, alert_id: int) -> None:
    """Pretend the escalation interval has passed."""
    conn.execute(
        "UPDATE alert_delivery.escalations SET next_at = now() - interval '1 second'"
        " WHERE alert_id = %s AND stopped_at IS NULL",
        (alert_id,),
    )


def escalate_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return queue_rows(conn, event="escalate")


def test_critical_escalates_at_once_to_the_escalation_route(
    conn: psycopg.Connection, db_url: str, hooks: dict[str, int]
) -> None:
    raised = alert(conn, severity="CRITICAL")
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN alert_delivery_queue")
        [action] = run_escalations(conn)
        notices = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    assert (action.alert_id, action.reason, action.action) == (
        raised.alert_id,
        "unacknowledged",
        "sent",
    )
    assert (action.level, action.queued) == (1, 1)
    [row] = escalate_rows(conn)
    assert notices == [str(row["delivery_id"])]
    assert (row["webhook_id"], row["seq"], row["status"]) == (hooks["pager"], 1, "pending")
    assert row["alert_ids"] == [raised.alert_id]
    # The escalation one step up, as the one formatter (Python, at the first claim) renders it
    # for the webhook's kind; until the enqueue stops formatting (0008) the queued payload is
    # the SQL formatter's, and its content must agree.
    payload = row["payload"] or render_alerts(conn, "pagerduty", "escalate", [raised.alert_id])
    assert payload["event_action"] == "trigger"
    assert payload["payload"]["severity"] == "critical"
    assert payload["payload"]["summary"].startswith("ESCALATED [CRITICAL] merge")
    assert "routing_key" not in payload
    rendered = render_alerts(conn, "pagerduty", "escalate", [raised.alert_id])
    assert rendered["payload"]["summary"] == payload["payload"]["summary"]
    assert rendered["payload"]["severity"] == payload["payload"]["severity"]
    [state] = escalations(conn, raised.alert_id)
    assert (state["level"], state["stopped_at"], state["interval_s"]) == (1, None, 600)
    detail = conn.execute(
        "SELECT detail FROM alert_delivery.delivery_log WHERE event = 'escalated'"
        " AND delivery_id = %s",
        (row["delivery_id"],),
    ).fetchone()
    assert detail is not None
    assert detail[0].startswith("level 1 of 5: CRITICAL alert unacknowledged for")
    assert detail[0].endswith("(via escalation route on-call)")


@pytest.mark.parametrize(("severity", "after_s"), [("WARNING", 600), ("INFO", 1800)])
def test_lower_severities_wait_for_their_rules_escalate_after(
    conn: psycopg.Connection, hooks: dict[str, int], severity: str, after_s: int
) -> None:
    raised = alert(conn, severity=severity)
    assert run_escalations(conn) == []
    age(conn, raised.alert_id, after_s - 60)
    assert run_escalations(conn) == []
    assert escalations(conn, raised.alert_id) == []
    age(conn, raised.alert_id, 61)
    [action] = run_escalations(conn)
    assert (action.reason, action.action, action.queued) == ("unacknowledged", "sent", 1)
    [row] = escalate_rows(conn)
    assert row["payload"]["payload"]["severity"] == (
        "error" if severity == "WARNING" else "warning"
    )


def test_a_rules_escalate_after_wins_over_the_severity_default(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    from alert_delivery.alerting import add_rule

    add_rule(
        conn,
        "merge-fast",
        severity="WARNING",
        operation_type="merge",
        webhooks=["slack"],
        escalate_after_s=120,
        priority=1,
    )
    raised = alert(conn, severity="WARNING")
    age(conn, raised.alert_id, 100)
    assert run_escalations(conn) == []
    age(conn, raised.alert_id, 21)
    assert [a.reason for a in run_escalations(conn)] == ["unacknowledged"]


def test_repeats_at_the_interval_and_stops_after_five_levels(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    raised = alert(conn, severity="CRITICAL")
    policy = EscalationPolicy(interval_s=120)
    for level in range(1, 6):
        actions = run_escalations(conn, policy)
        assert [(a.level, a.queued) for a in actions] == [(level, 1)]
        assert run_escalations(conn, policy) == []  # not due again before the interval
        make_due(conn, raised.alert_id)
    assert actions[0].action == "sent, stopped: max_level"
    assert run_escalations(conn, policy) == []
    [state] = escalations(conn, raised.alert_id)
    assert (state["level"], state["stop_reason"]) == (5, "max_level")
    assert state["stopped_at"] is not None
    assert [r["seq"] for r in escalate_rows(conn)] == [1, 2, 3, 4, 5]
    assert log_events(conn, raised.alert_id).count("escalated") == 5


def test_the_latest_alert_payload_goes_out(conn: psycopg.Connection, hooks: dict[str, int]) -> None:
    add_webhook(conn, "hook", "webhook")
    add_route(conn, "to-hook", kinds=["webhook"])
    raised = alert(conn, severity="CRITICAL")
    run_escalations(conn)
    alert(conn, severity="CRITICAL")  # the same fingerprint again: occurrences 2
    make_due(conn, raised.alert_id)
    run_escalations(conn)
    bodies = [r["payload"] for r in escalate_rows(conn) if r["kind"] == "webhook"]
    assert [b["data"]["alerts"][0]["occurrences"] for b in bodies] == [1, 2]
    assert {b["type"] for b in bodies} == {"alert.escalated"}


@pytest.mark.parametrize("stop", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_stop_escalation(
    conn: psycopg.Connection, hooks: dict[str, int], stop: str
) -> None:
    raised = alert(conn, severity="CRITICAL")
    run_escalations(conn)
    if stop == "acknowledge":
        acknowledge(conn, raised.alert_id, by="alice")
    else:
        resolve(conn, raised.alert_id)
    make_due(conn, raised.alert_id)
    assert run_escalations(conn) == []
    [state] = escalations(conn, raised.alert_id)
    assert state["stop_reason"] == ("acknowledged" if stop == "acknowledge" else "resolved")
    assert len(escalate_rows(conn)) == 1


def test_an_alert_closed_behind_the_pipelines_back_stops_on_the_next_run(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    raised = alert(conn, severity="CRITICAL")
    run_escalations(conn)
    conn.execute(
        "UPDATE alert_delivery.alerts SET status = 'resolved', resolved_at = now()"
        " WHERE alert_id = %s",
        (raised.alert_id,),
    )
    make_due(conn, raised.alert_id)
    [action] = run_escalations(conn)
    assert (action.action, action.level, action.queued) == ("stopped: resolved", 1, 0)
    assert len(escalate_rows(conn)) == 1


def test_state_survives_a_restart(db_url: str, hooks: dict[str, int]) -> None:
    with psycopg.connect(db_url) as first:
        raised = alert(first, severity="CRITICAL")
        [sent] = run_escalations(first)
        first.commit()
    # A new process: new connection, same database.
    with psycopg.connect(db_url, autocommit=True) as second:
        assert run_escalations(second) == []
        [state] = escalations(second, raised.alert_id)
        assert (state["escalation_id"], state["level"]) == (sent.escalation_id, 1)
        make_due(second, raised.alert_id)
    with psycopg.connect(db_url, autocommit=True) as third:
        [again] = run_escalations(third)
        assert (again.escalation_id, again.level) == (sent.escalation_id, 2)
        assert [r["seq"] for r in escalate_rows(third)] == [1, 2]


def test_two_runs_at_once_send_each_level_once(db_url: str, hooks: dict[str, int]) -> None:
    with psycopg.connect(db_url, autocommit=True) as setup:
        raised = alert(setup, severity="CRITICAL")
    results: dict[str, Any] = {}
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        results["a"] = run_escalations(a)  # holds its locks until it commits

        def other() -> None:
            results["b"] = run_escalations(b)
            b.commit()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # waiting on the open escalation a has not committed yet
        a.commit()
        thread.join(timeout=10)
    assert [x.level for x in results["a"]] == [1]
    assert results["b"] == []
    with psycopg.connect(db_url, autocommit=True) as check:
        assert len(escalate_rows(check)) == 1
        assert len(escalations(check, raised.alert_id)) == 1


def test_without_an_escalation_route_the_alerts_own_route_hears(conn: psycopg.Connection) -> None:
    add_webhook(conn, "slack", "slack")
    add_webhook(conn, "mail", "email", config={"to": ["oncall@example.test"], "from": "a@b.test"})
    raised = alert(conn, severity="CRITICAL")
    [action] = run_escalations(conn)
    assert action.queued == 2
    bodies = {r["kind"]: r["payload"] for r in escalate_rows(conn)}
    assert bodies["slack"]["text"].startswith("ESCALATED [CRITICAL] merge")
    assert bodies["email"]["subject"].startswith("[ESCALATED] [CRITICAL] merge")
    details = conn.execute(
        "SELECT detail FROM alert_delivery.delivery_log WHERE event = 'escalated'"
        " AND alert_id = %s",
        (raised.alert_id,),
    ).fetchall()
    assert all(d[0].endswith("(via alert route)") for d in details)


def test_routes_match_on_severity_and_reason(conn: psycopg.Connection) -> None:
    add_webhook(conn, "slack", "slack")
    add_webhook(conn, "pager", "pagerduty")
    add_webhook(conn, "ops", "mattermost")
    add_webhook(conn, "pager-off", "pagerduty", active=False)
    add_route(conn, "critical-pages", severity="CRITICAL", kinds=["pagerduty"])
    add_route(conn, "stuck-only", webhooks=["ops"], reasons=["stale_delivery"])
    raised = alert(conn, severity="CRITICAL")
    run_escalations(conn)
    assert [r["webhook_name"] for r in escalate_rows(conn)] == ["pager"]
    assert raised.alert_id == escalate_rows(conn)[0]["alert_id"]


def test_nothing_to_send_to_still_leaves_a_log_row(conn: psycopg.Connection) -> None:
    slack = add_webhook(conn, "slack", "slack")
    raised = alert(conn, severity="CRITICAL")
    conn.execute(
        "UPDATE alert_delivery.webhooks SET active = false WHERE webhook_id = %s", (slack,)
    )
    [action] = run_escalations(conn)
    assert (action.action, action.queued) == ("sent", 0)
    detail = conn.execute(
        "SELECT detail FROM alert_delivery.delivery_log"
        " WHERE event = 'escalated' AND alert_id = %s",
        (raised.alert_id,),
    ).fetchone()
    assert detail is not None and "no escalation route or alert route" in detail[0]


def test_silenced_alerts_do_not_escalate(conn: psycopg.Connection, hooks: dict[str, int]) -> None:
    from alert_delivery.alerting import add_silence

    add_silence(conn, operation_type="merge", alert_type="ALL", minutes=60, reason="maintenance")
    raised = alert(conn, severity="CRITICAL")
    assert raised.alert_id and run_escalations(conn) == []
