"""firing -> acknowledged -> resolved, with the notifications each channel takes."""

import psycopg
import pytest

from alert_delivery.alerting import acknowledge, resolve
from alert_delivery.alerting.labels import fingerprint, legacy_labels
from alert_delivery.errors import InvalidInput
from tests.support.alerting import (
    add_webhook,
    alert,
    alert_row,
    kinds_for,
    log_events,
    queue_rows,
)


@pytest.fixture
def hooks(conn: psycopg.Connection) -> dict[str, int]:
    ids = {k: add_webhook(conn, k, k) for k in ("slack", "mattermost", "email", "webhook")}
    ids["pagerduty"] = add_webhook(conn, "pagerduty", "pagerduty")
    conn.execute(
        "UPDATE alert_delivery.routing_rules SET target_kinds = target_kinds"
        " || '{pagerduty,webhook}' WHERE name = 'default-critical'"
    )
    return ids


def test_acknowledge_records_who_and_tells_pagerduty(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    raised = alert(conn)
    assert acknowledge(conn, raised.alert_id, by="alice") == 5
    row = alert_row(conn, raised.alert_id)
    assert (row["status"], row["acknowledged_by"]) == ("acknowledged", "alice")
    assert row["acknowledged_at"] is not None
    acks = {r["kind"]: r["payload"] for r in queue_rows(conn, event="acknowledge")}
    # Every kind that received the trigger, email included (send_resolved defaults on).
    assert set(acks) == {"slack", "mattermost", "pagerduty", "webhook", "email"}
    dedup_key = "alert-delivery/" + fingerprint(
        legacy_labels("test", "merge", "STATISTICAL", "CRITICAL")
    )
    assert acks["pagerduty"] == {"event_action": "acknowledge", "dedup_key": dedup_key}
    assert acks["webhook"]["type"] == "alert.acknowledged"
    assert "acknowledged" in log_events(conn, raised.alert_id)
    with pytest.raises(InvalidInput, match="not firing"):
        acknowledge(conn, raised.alert_id, by="bob")


def test_resolve_sends_resolved_notifications_with_the_same_dedup_key(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    raised = alert(conn)
    triggers = {r["kind"]: r["payload"] for r in queue_rows(conn, event="trigger")}
    assert resolve(conn, raised.alert_id, by="api") == 5
    resolved = {r["kind"]: r["payload"] for r in queue_rows(conn, event="resolve")}
    assert set(resolved) == {"slack", "mattermost", "pagerduty", "webhook", "email"}
    assert resolved["pagerduty"] == {
        "event_action": "resolve",
        "dedup_key": triggers["pagerduty"]["dedup_key"],
    }
    assert resolved["slack"]["text"].startswith("RESOLVED [CRITICAL] merge")
    assert resolved["slack"]["attachments"][0]["color"] == "#2EB67D"
    assert resolved["mattermost"]["attachments"][0]["color"] == "#008000"
    assert resolved["webhook"]["type"] == "alert.resolved"
    assert resolved["webhook"]["data"]["alerts"][0]["status"] == "resolved"
    row = alert_row(conn, raised.alert_id)
    assert row["status"] == "resolved" and row["resolved_at"] is not None
    with pytest.raises(InvalidInput, match="already resolved"):
        resolve(conn, raised.alert_id)
    # The fingerprint is free again: a new occurrence opens a new alert.
    assert alert(conn, description="new content").alert_id != raised.alert_id


def test_resolve_stops_open_escalations_and_unknown_alerts_are_named(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    raised = alert(conn)
    conn.execute(
        "INSERT INTO alert_delivery.escalations (alert_id, reason) VALUES (%s, 'unacknowledged')",
        (raised.alert_id,),
    )
    resolve(conn, raised.alert_id)
    stopped = conn.execute(
        "SELECT stop_reason FROM alert_delivery.escalations WHERE alert_id = %s",
        (raised.alert_id,),
    ).fetchone()
    assert stopped == ("resolved",)
    with pytest.raises(InvalidInput) as caught:
        resolve(conn, 999_999)
    assert str(caught.value) == "alert_id: alert 999999 does not exist"


def test_alert_never_notified_resolves_quietly(conn: psycopg.Connection) -> None:
    raised = alert(conn)  # no webhooks at all: unrouted
    assert resolve(conn, raised.alert_id) == 0
    assert log_events(conn, raised.alert_id) == ["suppressed_no_route", "resolved"]


def test_send_resolved_off_keeps_a_target_out_of_resolve_notices(
    conn: psycopg.Connection, hooks: dict[str, int]
) -> None:
    conn.execute("UPDATE alert_delivery.webhooks SET send_resolved = false WHERE name = 'email'")
    raised = alert(conn)
    assert "email" in kinds_for(conn, raised.alert_id)
    assert resolve(conn, raised.alert_id, by="api") == 4
    assert "email" not in {r["kind"] for r in queue_rows(conn, event="resolve")}
