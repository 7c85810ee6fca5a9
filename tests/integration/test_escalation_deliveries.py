"""Deliveries pending longer than 30 minutes, and deliveries one failure from the dead-letter
queue, escalate (to someone other than the webhook that is not answering)."""

from typing import Any

import psycopg
import pytest

from alert_delivery.alerting import acknowledge
from alert_delivery.escalation import EscalationPolicy, add_route, run_escalations
from tests.support.alerting import add_webhook, alert, queue_rows


@pytest.fixture
def hooks(conn: psycopg.Connection) -> dict[str, int]:
    """INFO alerts go to slack (default rule, escalate-after 30 min); ops is a second receiver."""
    return {
        "slack": add_webhook(conn, "slack", "slack"),
        "ops": add_webhook(conn, "ops", "webhook"),
    }


def trigger_row(conn: psycopg.Connection, alert_id: int, webhook_id: int) -> dict[str, Any]:
    [row] = [
        r
        for r in queue_rows(conn, event="trigger")
        if r["alert_id"] == alert_id and r["webhook_id"] == webhook_id
    ]
    return row


def set_row(conn: psycopg.Connection, delivery_id: int, sql: str, *args: object) -> None:
    conn.execute(
        f"UPDATE alert_delivery.delivery_queue SET {sql} WHERE delivery_id = %s".encode(),
        (*args, delivery_id),
    )


def pending_for(conn: psycopg.Connection, delivery_id: int, seconds: int) -> None:
    set_row(conn, delivery_id, "created_at = now() - make_interval(secs => %s)", seconds)


def test_a_delivery_pending_over_30_minutes_escalates_until_it_is_delivered(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    add_route(conn, "stuck", webhooks=["ops"], reasons=["stale_delivery"])
    raised = alert(conn, severity="INFO")
    row = trigger_row(conn, raised.alert_id, hooks["slack"])
    pending_for(conn, row["delivery_id"], 29 * 60)
    assert run_escalations(conn) == []
    pending_for(conn, row["delivery_id"], 30 * 60 + 1)
    [action] = run_escalations(conn)
    assert (action.reason, action.delivery_id, action.queued) == (
        "stale_delivery",
        row["delivery_id"],
        1,
    )
    [sent] = queue_rows(conn, event="escalate")
    assert (sent["webhook_id"], sent["seq"]) == (hooks["ops"], 1)
    assert sent["payload"]["type"] == "alert.escalated"
    detail = conn.execute(
        "SELECT detail FROM alert_delivery.delivery_log WHERE delivery_id = %s"
        " AND event = 'escalated'",
        (sent["delivery_id"],),
    ).fetchone()
    assert detail is not None
    assert f"trigger delivery {row['delivery_id']} pending for 18" in detail[0]

    set_row(conn, row["delivery_id"], "status = 'delivered', delivered_at = now()")
    conn.execute("UPDATE alert_delivery.escalations SET next_at = now()")
    [stopped] = run_escalations(conn)
    assert (stopped.action, stopped.level) == ("stopped: delivery delivered", 1)
    assert run_escalations(conn) == []  # the same delivery never escalates twice


@pytest.mark.parametrize(
    ("schedule", "attempts", "escalates"),
    [(None, 7, False), (None, 8, True), ([5, 30], 1, False), ([5, 30], 2, True)],
)
def test_one_failure_from_the_dead_letter_queue_escalates(
    conn: psycopg.Connection,
    hooks: dict[str, int],
    schedule: list[int] | None,
    attempts: int,
    escalates: bool,
) -> None:
    conn.execute(
        "UPDATE alert_delivery.webhooks SET retry_schedule_s = %s WHERE webhook_id = %s",
        (schedule, hooks["slack"]),
    )
    raised = alert(conn, severity="INFO")
    row = trigger_row(conn, raised.alert_id, hooks["slack"])
    set_row(conn, row["delivery_id"], "attempts = %s, last_status = 503", attempts)
    actions = run_escalations(conn)
    if not escalates:
        assert actions == []
        return
    [action] = actions
    assert (action.reason, action.delivery_id) == ("near_dead_letter", row["delivery_id"])
    # No escalation route: the alert's own route, except the failing webhook.
    assert [r["webhook_id"] for r in queue_rows(conn, event="escalate")] == []
    assert action.queued == 0


def test_near_dead_goes_to_the_rest_of_the_alert_route_and_stops_when_dead(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    from alert_delivery.alerting import add_rule

    add_rule(conn, "info-both", severity="INFO", webhooks=["slack", "ops"], escalate_after_s=1800)
    raised = alert(conn, severity="INFO")
    row = trigger_row(conn, raised.alert_id, hooks["slack"])
    set_row(conn, row["delivery_id"], "attempts = 8")
    [action] = run_escalations(conn)
    assert action.reason == "near_dead_letter"
    [sent] = queue_rows(conn, event="escalate")
    assert sent["webhook_id"] == hooks["ops"]
    set_row(conn, row["delivery_id"], "status = 'dead', dead_at = now(), attempts = 9")
    [stopped] = run_escalations(conn)
    assert stopped.action == "stopped: delivery dead"


def test_both_delivery_reasons_and_the_alert_share_seq_space(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    add_webhook(conn, "pager", "pagerduty")
    add_route(conn, "everything", webhooks=["pager"])
    raised = alert(conn, severity="CRITICAL")  # critical: unacknowledged at once
    slack = trigger_row(conn, raised.alert_id, hooks["slack"])
    set_row(conn, slack["delivery_id"], "attempts = 8")
    pending_for(conn, slack["delivery_id"], 3600)
    actions = run_escalations(conn, EscalationPolicy())
    assert sorted(a.reason for a in actions) == [
        "near_dead_letter",
        "stale_delivery",
        "unacknowledged",
    ]
    seqs = sorted(r["seq"] for r in queue_rows(conn, event="escalate"))
    assert seqs == [1, 11, 21]  # one level 1 per escalation, none lost to the unique key
    assert all(a.queued == 1 for a in actions)


def test_escalation_rows_and_closed_alerts_do_not_escalate(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    add_webhook(conn, "pager", "pagerduty")
    add_route(conn, "pages", webhooks=["pager"], reasons=["unacknowledged"])
    raised = alert(conn, severity="CRITICAL")
    run_escalations(conn)
    [esc] = queue_rows(conn, event="escalate")
    set_row(conn, esc["delivery_id"], "attempts = 8, created_at = now() - interval '2 hours'")
    conn.execute("UPDATE alert_delivery.escalations SET next_at = now() + interval '1 hour'")
    assert run_escalations(conn) == []
    other = alert(conn, severity="INFO", operation_type="commit", title="commit slow")
    row = trigger_row(conn, other.alert_id, hooks["slack"])
    acknowledge(conn, other.alert_id, by="bob")
    set_row(conn, row["delivery_id"], "attempts = 8, created_at = now() - interval '2 hours'")
    assert run_escalations(conn) == []
    assert raised.alert_id != other.alert_id
