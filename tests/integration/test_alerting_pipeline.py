"""The SQL pipeline end to end on a real PostgreSQL: routing, dedup, silences, inhibition,
grouping, enqueueing and NOTIFY, through the Python API and through plain SQL."""

import psycopg
import pytest
from psycopg import errors

from alert_delivery.alerting import (
    RaiseResult,
    add_silence,
    expire_silence,
    raise_alert,
    release_held,
    resolve,
)
from alert_delivery.errors import InvalidInput
from tests.support.alerting import (
    add_default_webhooks,
    add_webhook,
    age_notification,
    alert,
    alert_row,
    kinds_for,
    log_events,
    queue_rows,
)


def test_default_routes_by_severity(conn: psycopg.Connection) -> None:
    add_default_webhooks(conn)
    critical = alert(conn, operation_type="merge", severity="CRITICAL")
    warning = alert(conn, operation_type="commit", severity="WARNING")
    info = alert(conn, operation_type="branch", severity="INFO")
    assert {critical.outcome, warning.outcome, info.outcome} == {"notified"}
    assert kinds_for(conn, critical.alert_id) == ["email", "mattermost", "slack"]
    assert kinds_for(conn, warning.alert_id) == ["mattermost", "slack"]
    assert kinds_for(conn, info.alert_id) == ["slack"]
    escalate = {
        a.alert_id: alert_row(conn, a.alert_id)["escalate_after_s"]
        for a in (critical, warning, info)
    }
    assert escalate == {critical.alert_id: 0, warning.alert_id: 600, info.alert_id: 1800}
    rows = {r["alert_id"]: r for r in queue_rows(conn) if r["kind"] == "slack"}
    # CRITICAL is due now; the others wait for their 30 s group window.
    assert rows[critical.alert_id]["group_key"] is None
    assert rows[warning.alert_id]["next_attempt_at"] > rows[critical.alert_id]["next_attempt_at"]
    assert all(r["status"] == "pending" and r["payload"] for r in queue_rows(conn))
    assert log_events(conn, critical.alert_id) == ["queued"] * 3


def test_every_active_webhook_of_a_kind_gets_it_and_inactive_ones_do_not(
    conn: psycopg.Connection,
) -> None:
    add_webhook(conn, "slack-a", "slack")
    add_webhook(conn, "slack-b", "slack")
    add_webhook(conn, "slack-off", "slack", active=False)
    raised = alert(conn, severity="INFO")
    assert sorted(r["webhook_name"] for r in queue_rows(conn)) == ["slack-a", "slack-b"]
    assert kinds_for(conn, raised.alert_id) == ["slack", "slack"]


def test_unmatched_alert_goes_to_the_fallback_inbox(conn: psycopg.Connection) -> None:
    add_webhook(conn, "ops-inbox", "inbox", config={"recipients": ["ops"]})
    raised = alert(conn, severity="INFO")  # INFO routes to Slack, and there is no Slack webhook
    assert raised.outcome == "notified"
    assert kinds_for(conn, raised.alert_id) == ["inbox"]
    payload = queue_rows(conn)[0]["payload"]
    assert set(payload) == {"title", "body", "severity"}


def test_no_route_at_all_leaves_a_log_row(conn: psycopg.Connection) -> None:
    raised = alert(conn)
    assert raised.outcome == "unrouted"
    assert queue_rows(conn) == []
    assert log_events(conn, raised.alert_id) == ["suppressed_no_route"]


def test_same_fingerprint_is_deduplicated_until_the_repeat_interval(
    conn: psycopg.Connection,
) -> None:
    add_webhook(conn, "slack", "slack")
    first = alert(conn, severity="INFO")
    again = alert(conn, severity="INFO", title="a different title, same fingerprint")
    assert again == type(first)(first.alert_id, "deduplicated")
    assert alert_row(conn, first.alert_id)["occurrences"] == 2
    assert log_events(conn, first.alert_id) == ["queued", "suppressed_duplicate"]
    assert len(queue_rows(conn)) == 1

    conn.execute("UPDATE alert_delivery.delivery_queue SET status = 'delivered'")
    age_notification(conn, [first.alert_id], hours=4.1)
    repeated = alert(conn, severity="INFO")
    assert repeated.outcome == "repeated"
    seqs = sorted(r["seq"] for r in queue_rows(conn))
    assert seqs == [0, 1]


def test_identical_content_within_24h_is_suppressed(conn: psycopg.Connection) -> None:
    add_webhook(conn, "slack", "slack")
    first = alert(conn, severity="INFO")
    # The same alert from another source while the first is open and notified: one message.
    echo = alert(conn, severity="INFO", source="elsewhere")
    assert echo.alert_id != first.alert_id
    assert echo.outcome == "suppressed_duplicate_content"
    assert log_events(conn, echo.alert_id) == ["suppressed_duplicate_content"]
    assert kinds_for(conn, echo.alert_id) == []
    # ... but it is never silent for good: once its repeat interval passes, it notifies.
    assert alert(conn, severity="INFO", source="elsewhere").outcome == "deduplicated"
    age_notification(conn, [echo.alert_id], hours=4.1)
    assert alert(conn, severity="INFO", source="elsewhere").outcome == "repeated"
    assert kinds_for(conn, echo.alert_id) == ["slack"]


def test_notify_resolve_raise_notifies_again(conn: psycopg.Connection) -> None:
    """Regression: a resolved alert that fires again is news, even with the same content, and
    however long after (the old pipeline sent nothing, 0 rows, even 25 h later)."""
    add_webhook(conn, "slack", "slack")
    first = alert(conn, severity="INFO")
    assert first.outcome == "notified"
    resolve(conn, first.alert_id)
    again = alert(conn, severity="INFO")
    assert again.alert_id != first.alert_id and again.outcome == "notified"
    assert kinds_for(conn, again.alert_id) == ["slack"]
    resolve(conn, again.alert_id)
    age_notification(conn, [first.alert_id, again.alert_id], hours=25)
    later = alert(conn, severity="INFO")
    assert later.outcome == "notified" and kinds_for(conn, later.alert_id) == ["slack"]


def test_silence_holds_then_releases_when_it_ends(conn: psycopg.Connection) -> None:
    add_default_webhooks(conn)
    silence = add_silence(
        conn, operation_type="merge", alert_type="ALL", reason="deploy", minutes=30
    )
    held = alert(conn, operation_type="merge")
    other = alert(conn, operation_type="commit")
    assert (held.outcome, other.outcome) == ("silenced", "notified")
    assert alert_row(conn, held.alert_id)["held_reason"] == "silenced"
    assert log_events(conn, held.alert_id) == ["suppressed_silenced"]
    assert kinds_for(conn, held.alert_id) == []
    assert release_held(conn) == 0  # the silence still runs

    assert expire_silence(conn, silence) == 1
    assert kinds_for(conn, held.alert_id) == ["email", "mattermost", "slack"]
    assert log_events(conn, held.alert_id)[:2] == ["suppressed_silenced", "released"]
    assert alert_row(conn, held.alert_id)["held_reason"] is None


def test_silenced_alert_that_resolved_meanwhile_never_notifies(conn: psycopg.Connection) -> None:
    add_default_webhooks(conn)
    silence = add_silence(conn, operation_type="ALL", alert_type="STATISTICAL", reason="x")
    held = alert(conn)
    resolve(conn, held.alert_id)
    assert expire_silence(conn, silence) == 0
    assert queue_rows(conn) == []


def test_a_firing_critical_inhibits_warning_for_the_same_operation(
    conn: psycopg.Connection,
) -> None:
    add_default_webhooks(conn)
    critical = alert(conn, operation_type="merge", severity="CRITICAL")
    warning = alert(conn, operation_type="merge", severity="WARNING", alert_type="P99")
    info = alert(conn, operation_type="merge", severity="INFO", alert_type="OTHER")
    elsewhere = alert(conn, operation_type="commit", severity="WARNING")
    assert (warning.outcome, info.outcome, elsewhere.outcome) == (
        "inhibited",
        "inhibited",
        "notified",
    )
    assert log_events(conn, warning.alert_id) == ["suppressed_inhibited"]

    resolve(conn, critical.alert_id)  # the inhibited alerts still fire: they notify now
    assert kinds_for(conn, warning.alert_id) == ["mattermost", "slack"]
    assert kinds_for(conn, info.alert_id) == ["slack"]


def test_inhibit_rules_are_configurable(conn: psycopg.Connection) -> None:
    add_default_webhooks(conn)
    conn.execute("UPDATE alert_delivery.inhibit_rules SET active = false")
    alert(conn, operation_type="merge", severity="CRITICAL")
    assert alert(conn, operation_type="merge", severity="WARNING").outcome == "notified"


def test_group_window_batches_alerts_per_webhook_at_most_ten(conn: psycopg.Connection) -> None:
    add_webhook(conn, "slack", "slack")
    ids = [alert(conn, operation_type=f"op{i:02}", severity="WARNING").alert_id for i in range(12)]
    rows = queue_rows(conn)
    assert [r["alert_ids"] for r in rows] == [ids[:10], ids[10:]]
    assert rows[0]["alert_id"] == ids[0]
    rule = conn.execute(
        "SELECT rule_id FROM alert_delivery.routing_rules WHERE name = 'default-warning'"
    ).fetchone()
    assert rule is not None
    assert rows[0]["group_key"] == f"trigger:{rule[0]}:WARNING\x1fSTATISTICAL"
    payload = rows[0]["payload"]
    assert payload["text"].startswith("FIRING: 10 alerts")
    assert len(payload["attachments"]) == 10
    assert log_events(conn, ids[5]) == ["queued"]


def test_critical_is_never_delayed_or_grouped(conn: psycopg.Connection) -> None:
    add_webhook(conn, "slack", "slack")
    a = alert(conn, operation_type="a")
    b = alert(conn, operation_type="b")
    rows = queue_rows(conn)
    assert [r["alert_ids"] for r in rows] == [[a.alert_id], [b.alert_id]]
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    assert all(r["next_attempt_at"] <= now[0] for r in rows)


def test_pagerduty_is_never_grouped(conn: psycopg.Connection) -> None:
    pd = add_webhook(conn, "pd", "pagerduty")
    conn.execute(
        "INSERT INTO alert_delivery.routing_rule_targets (rule_id, webhook_id)"
        " SELECT rule_id, %s FROM alert_delivery.routing_rules WHERE name = 'default-warning'",
        (pd,),
    )
    alert(conn, operation_type="a", severity="WARNING")
    alert(conn, operation_type="b", severity="WARNING")
    assert [len(r["alert_ids"]) for r in queue_rows(conn)] == [1, 1]


def test_enqueue_notifies_listeners_with_the_highest_delivery_id(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN alert_delivery_queue")
        with psycopg.connect(db_url) as producer:
            add_default_webhooks(producer)
            alert(producer)
            producer.commit()
            rows = queue_rows(producer)
        notes = list(listener.notifies(timeout=2, stop_after=1))
    assert notes and notes[0].channel == "alert_delivery_queue"
    assert int(notes[0].payload) == max(r["delivery_id"] for r in rows)


def test_rolled_back_producer_transaction_leaves_nothing(db_url: str) -> None:
    with psycopg.connect(db_url) as producer:
        add_default_webhooks(producer)
        producer.commit()
        alert(producer)
        producer.rollback()
        assert queue_rows(producer) == []
        assert producer.execute("SELECT count(*) FROM alert_delivery.alerts").fetchone() == (0,)


def test_plain_sql_producer_gets_the_same_pipeline(conn: psycopg.Connection) -> None:
    add_default_webhooks(conn)
    row = conn.execute(
        "SELECT * FROM alert_delivery.raise_alert('app', 'merge', 'STATISTICAL', 'critical',"
        " 'from SQL', 'desc')"
    ).fetchone()
    assert row is not None and row[1] == "notified"
    assert kinds_for(conn, row[0]) == ["email", "mattermost", "slack"]
    # The same pipeline through the JSON spelling, labels and annotations included.
    doc = (
        '{"labels": {"source": "app", "operation_type": "commit", "alert_type": "X",'
        ' "severity": "warning", "team": "db"}, "annotations": {"title": "plain"}}'
    )
    row = conn.execute("SELECT * FROM alert_delivery.raise_alert(%s::jsonb)", (doc,)).fetchone()
    assert row is not None and row[1] == "notified"
    assert kinds_for(conn, row[0]) == ["mattermost", "slack"]
    labels = alert_row(conn, row[0])["labels"]
    assert labels["severity"] == "WARNING" and labels["team"] == "db"


SQL_ERRORS = [
    ("SELECT alert_delivery.raise_alert('a', 'op', 'T', 'LOUD', 'x')", "severity"),
    ("SELECT alert_delivery.raise_alert('a', 'op', 'T', NULL, 'x')", "severity"),
    ("SELECT alert_delivery.raise_alert('a', 'op', 'T', 'INFO', '  ')", "title"),
    ("SELECT alert_delivery.raise_alert('a', '', 'T', 'INFO', 'x')", "operation_type"),
    (
        """SELECT alert_delivery.raise_alert('{"operation_type": "op", "alert_type": "T",
        "severity": "INFO", "title": "x", "colour": "red"}'::jsonb)""",
        "colour",
    ),
    (
        """SELECT alert_delivery.raise_alert('{"operation_type": "op", "alert_type": "T",
        "severity": "INFO", "title": "x", "details": [1]}'::jsonb)""",
        "details",
    ),
]


def test_invalid_input_raises_22023_naming_the_field(db_url: str) -> None:
    with psycopg.connect(db_url) as producer:
        producer.execute("CREATE TEMP TABLE mine (x int)")
        for sql, field in SQL_ERRORS:
            with pytest.raises(errors.InvalidParameterValue) as caught, producer.transaction():
                producer.execute(sql.encode())
            assert caught.value.diag.sqlstate == "22023"
            assert caught.value.diag.column_name == field
            assert field in str(caught.value)
            # The caller decided (its savepoint rolled back); its transaction goes on.
            producer.execute("INSERT INTO mine VALUES (1)")
        assert producer.execute("SELECT count(*) FROM mine").fetchone() == (len(SQL_ERRORS),)
        assert producer.execute("SELECT count(*) FROM alert_delivery.alerts").fetchone() == (0,)


PYTHON_ERRORS: list[tuple[dict[str, object], str]] = [
    ({"severity": "urgent"}, "severity"),
    ({"title": ""}, "title"),
    ({"alert_type": None}, "alert_type"),
    ({"runbook": "x"}, "runbook"),
    ({"details": {"z": float("nan")}}, "details"),
]


def test_python_api_turns_bad_fields_into_invalid_input(db_url: str) -> None:
    with psycopg.connect(db_url) as producer:
        for overrides, field in PYTHON_ERRORS:
            with pytest.raises(InvalidInput) as caught, producer.transaction():
                alert(producer, **overrides)
            assert caught.value.where == field
            assert str(caught.value).startswith(f"{field}: ")


def test_an_alert_whose_end_time_passed_resolves_its_open_alert(conn: psycopg.Connection) -> None:
    """Prometheus re-sends a resolved alert with endsAt in the past: it resolves, once."""
    add_webhook(conn, "slack", "slack")
    doc = {"labels": {"alertname": "Down", "job": "api", "severity": "critical"}}
    raised = raise_alert(conn, **doc, annotations={"summary": "api down"})
    assert raised.outcome == "notified"
    resend = raise_alert(conn, **doc, annotations={"summary": "api still down"})
    assert resend == RaiseResult(raised.alert_id, "deduplicated")
    assert alert_row(conn, raised.alert_id)["annotations"] == {"summary": "api still down"}
    ended = raise_alert(conn, **doc, ends_at="2000-01-01T00:00:00Z")
    assert ended == RaiseResult(raised.alert_id, "resolved")
    assert alert_row(conn, raised.alert_id)["status"] == "resolved"
    assert kinds_for(conn, raised.alert_id, "resolve") == ["slack"]
    # Again, with nothing open: still 'resolved', no alert.
    assert raise_alert(conn, **doc, ends_at="2000-01-01T00:00:00Z") == RaiseResult(None, "resolved")


def test_a_historical_alert_is_recorded_not_paged(conn: psycopg.Connection) -> None:
    """A backfill's hours older than the horizon: the alert exists, nobody is paged for it."""
    add_webhook(conn, "slack", "slack")
    old = raise_alert(
        conn,
        labels={"alertname": "Spike", "severity": "critical", "operation_type": "merge"},
        annotations={"title": "merge spike", "historical": "true"},
        starts_at="2026-01-01T10:00:00Z",
    )
    assert old.outcome == "historical"
    assert kinds_for(conn, old.alert_id) == []
    assert log_events(conn, old.alert_id) == ["suppressed_historical"]
    assert str(alert_row(conn, old.alert_id)["starts_at"]).startswith("2026-01-01 10:00")


def test_one_rule_firing_for_many_instances_is_many_alerts(conn: psycopg.Connection) -> None:
    """Same summary, different `instance`: not content duplicates (only `source` may differ)."""
    add_webhook(conn, "slack", "slack")
    outcomes = [
        raise_alert(
            conn,
            labels={"alertname": "Down", "instance": f"10.0.0.{i}:9100", "severity": "critical"},
            annotations={"summary": "target down"},
        ).outcome
        for i in range(5)
    ]
    assert outcomes == ["notified"] * 5


def test_the_default_inhibition_needs_an_operation_on_both_sides(conn: psycopg.Connection) -> None:
    """A CRITICAL alert without operation_type (e.g. from Prometheus) inhibits nothing: "the
    same operation" needs one."""
    add_webhook(conn, "slack", "slack")
    raise_alert(conn, labels={"alertname": "Down", "severity": "critical"})
    warning = raise_alert(conn, labels={"alertname": "Slow", "severity": "warning"})
    assert warning.outcome == "notified"
