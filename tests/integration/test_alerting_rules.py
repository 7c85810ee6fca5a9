"""Routing rules and silences: configuration, legacy settings, and bad input named by field."""

import psycopg
import pytest

from alert_delivery.alerting import add_rule, add_silence, list_rules, list_silences, remove_rule
from alert_delivery.alerting.routing import ensure_rule
from alert_delivery.errors import InvalidInput
from tests.support.alerting import add_webhook, alert, alert_row, kinds_for, queue_rows


@pytest.mark.parametrize("continues", [False, True])
def test_rule_to_a_specific_webhook_with_its_own_escalation(
    conn: psycopg.Connection, continues: bool
) -> None:
    pd = add_webhook(conn, "oncall", "pagerduty")
    add_webhook(conn, "chat", "slack")
    add_rule(
        conn,
        "merge-pages",
        severity="warning",
        operation_type="merge",
        webhooks=["oncall"],
        escalate_after_s=120,
        priority=1,
        continues=continues,
    )
    raised = alert(conn, severity="WARNING")
    names = sorted(r["webhook_name"] for r in queue_rows(conn))
    # First match wins; with continue the default WARNING rule (slack) applies as well.
    assert names == (["chat", "oncall"] if continues else ["oncall"])
    assert alert_row(conn, raised.alert_id)["escalate_after_s"] == 120
    other = alert(conn, severity="WARNING", operation_type="commit")
    assert kinds_for(conn, other.alert_id) == ["slack"]
    assert pd in {r["webhook_id"] for r in queue_rows(conn)}
    rules = {r.name: r for r in list_rules(conn)}
    assert rules["merge-pages"].webhooks == ["oncall"]
    assert rules["default-critical"].target_kinds == ["mattermost", "slack", "email"]
    assert rules["fallback"].is_fallback
    remove_rule(conn, "merge-pages")
    assert "merge-pages" not in {r.name for r in list_rules(conn)}


def test_legacy_notify_flags_normalise_into_the_channel_list(conn: psycopg.Connection) -> None:
    add_webhook(conn, "mail", "email")
    add_webhook(conn, "app", "inbox")
    conn.execute("UPDATE alert_delivery.routing_rules SET active = false")
    conn.execute(
        "INSERT INTO alert_delivery.routing_rules (name, notify_email, notify_inapp)"
        " VALUES ('legacy', true, true)"
    )
    row = conn.execute(
        "SELECT target_kinds FROM alert_delivery.routing_rules WHERE name = 'legacy'"
    ).fetchone()
    assert row == (["email", "inbox"],)
    raised = alert(conn, severity="INFO")
    assert kinds_for(conn, raised.alert_id) == ["email", "inbox"]


def test_ensure_rule_is_idempotent(conn: psycopg.Connection, db_url: str) -> None:
    hook = add_webhook(conn, "demo", "webhook")
    first = ensure_rule(db_url, name="demo-route", webhook_ids=[hook])
    assert ensure_rule(db_url, name="demo-route", webhook_ids=[hook]) == first
    raised = alert(conn, severity="INFO")
    assert kinds_for(conn, raised.alert_id) == ["webhook"]
    with pytest.raises(InvalidInput, match="webhook_ids"):
        ensure_rule(db_url, name="other", webhook_ids=[999])


BAD_RULES: list[tuple[dict[str, object], str]] = [
    ({"severity": "LOUD", "kinds": ["slack"]}, "severity"),
    ({"webhooks": ["nope"]}, "webhooks"),
    ({}, "webhooks"),
    ({"kinds": ["fax"]}, "kinds"),
    ({"kinds": ["slack"], "operation_type": " "}, "operation_type"),
    ({"kinds": ["slack"], "escalate_after_s": -1}, "escalate_after_s"),
    ({"kinds": ["slack"], "group_by": ["1colour"]}, "group_by"),
    ({"kinds": ["slack"], "match": ["severity=~(?i)warning"]}, "match[0]"),
    ({"kinds": ["slack"], "match": ["team"]}, "match[0]"),
    ({"kinds": ["slack"], "match": ["team=~a\\1"]}, "match[0]"),
    ({"kinds": ["slack"], "group_wait_s": -1}, "group_wait_s"),
    ({"kinds": ["slack"], "max_batch": 0}, "max_batch"),
    ({"kinds": ["slack"], "name": "default-info"}, "name"),
    ({"kinds": ["slack"], "name": ""}, "name"),
]


def test_malformed_rules_are_rejected_naming_the_field(conn: psycopg.Connection) -> None:
    add_webhook(conn, "chat", "slack")
    before = list_rules(conn)
    for kwargs, field in BAD_RULES:
        kwargs = dict(kwargs)
        name = str(kwargs.pop("name", "new-rule"))
        with pytest.raises(InvalidInput) as caught:
            add_rule(conn, name, **kwargs)  # type: ignore[arg-type]
        assert caught.value.where == field, kwargs
    assert list_rules(conn) == before


def test_malformed_silences_are_rejected_and_nothing_is_stored(conn: psycopg.Connection) -> None:
    cases = [
        ({"operation_type": "", "alert_type": "ALL", "reason": "r"}, "operation"),
        ({"operation_type": "ALL", "alert_type": " ", "reason": "r"}, "alert_type"),
        ({"operation_type": "ALL", "alert_type": "ALL", "reason": ""}, "reason"),
        ({"operation_type": "ALL", "alert_type": "ALL", "reason": "r", "minutes": -5}, "minutes"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as caught:
            add_silence(conn, **kwargs)  # type: ignore[arg-type]
        assert caught.value.where == field
    assert list_silences(conn, include_ended=True) == []
    with pytest.raises(InvalidInput) as caught:
        add_silence(conn, reason="r")
    assert caught.value.where == "match"
    silence = add_silence(conn, operation_type="all", alert_type="P99", reason="r", creator="bob")
    (listed,) = list_silences(conn)
    assert listed.silence_id == silence
    assert [str(x) for x in listed.matchers] == ["alert_type=P99"]
    assert listed.active and listed.created_by == "bob"


def test_legacy_channel_flags_on_alerts_add_those_kinds(conn: psycopg.Connection) -> None:
    """Seed 002's per-alert flags, through the Python and the SQL producer alike."""
    add_webhook(conn, "mail", "email")
    add_webhook(conn, "app", "inbox")
    add_webhook(conn, "chat", "slack")
    conn.execute("UPDATE alert_delivery.routing_rules SET active = false")
    add_rule(conn, "chat-only", kinds=["slack"])
    flagged = alert(conn, severity="INFO", notify_email=True, channels=["in_app"])
    assert kinds_for(conn, flagged.alert_id) == ["email", "inbox", "slack"]
    row = conn.execute(
        'SELECT * FROM alert_delivery.raise_alert(\'{"operation_type": "commit",'
        ' "alert_type": "T", "severity": "INFO", "title": "t",'
        ' "notify_inapp": true}\'::jsonb)'
    ).fetchone()
    assert row is not None and kinds_for(conn, row[0]) == ["inbox", "slack"]
    with pytest.raises(InvalidInput) as caught:
        alert(conn, operation_type="x", channels=["fax"])
    assert caught.value.where == "channels"
