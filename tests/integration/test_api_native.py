"""The native API: per-alert outcomes, only the invalid alert rejected (or all), ack/resolve,
an alert with its deliveries and their log."""

from collections.abc import Iterator

import psycopg
import pytest

from alert_delivery.alerting.routing import ensure_rule
from alert_delivery.alerting.silences import add_silence
from tests.support.alerting import add_webhook
from tests.support.api import Api, running_api


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running_api(db_url) as running:
        yield running


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM alert_delivery.{table}".encode()).fetchone()
    return int(row[0]) if row else 0


def test_batch_outcomes_in_order(api: Api, conn: psycopg.Connection, db_url: str) -> None:
    ensure_rule(db_url, name="all", webhook_ids=[add_webhook(conn, "hook", "webhook")])
    add_silence(conn, match=["team=quiet"], reason="test", creator="t")
    batch = [
        {"labels": {"alertname": "A", "severity": "critical"}, "details": {"n": 1}},
        {"labels": {"alertname": "A", "severity": "CRITICAL"}},
        {"labels": {"alertname": "B", "team": "quiet"}},
        {"labels": {"alertname": "C"}, "ends_at": "2001-01-01T00:00:00Z"},
    ]
    reply = api.call("POST", "/api/v1/alerts", {"alerts": batch}, token="ingest")
    assert reply.status == 200, reply.body
    results = reply.json()["results"]
    assert [r["outcome"] for r in results] == ["notified", "deduplicated", "silenced", "resolved"]
    assert results[0]["alert_id"] == results[1]["alert_id"]
    assert results[3]["alert_id"] is None
    assert reply.json()["accepted"] == 4


def test_an_invalid_alert_rejects_only_itself_unless_atomic(
    api: Api, conn: psycopg.Connection
) -> None:
    batch = [
        {"labels": {"alertname": "ok1"}},
        {"labels": {"alertname": "bad", "severity": "page"}},
        {"labels": {"alertname": "ok2"}, "details": "not an object"},
        {"labels": {"alertname": "ok3"}, "unknown": 1},
        {"labels": {"alertname": "ok4"}},
    ]
    reply = api.call("POST", "/api/v1/alerts", batch, token="ingest")
    assert reply.status == 200
    body = reply.json()
    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert [r.get("field") for r in body["results"]] == [
        None,
        "alerts[1].labels.severity",
        "alerts[2].details",
        "alerts[3].unknown",
        None,
    ]
    assert _count(conn, "alerts") == 2

    atomic = api.call("POST", "/api/v1/alerts", {"alerts": batch, "atomic": True}, token="ingest")
    assert atomic.status == 400 and atomic.json()["field"] == "alerts[1].labels.severity"
    sql_refused = [{"labels": {"alertname": "x1"}}, batch[2]]
    atomic = api.call(
        "POST", "/api/v1/alerts", {"alerts": sql_refused, "atomic": True}, token="ingest"
    )
    assert atomic.status == 400 and atomic.json()["field"] == "alerts[1].details"
    assert _count(conn, "alerts") == 2, "all or nothing wrote nothing"

    none_ok = api.call("POST", "/api/v1/alerts", [batch[1]], token="ingest")
    assert none_ok.status == 400 and none_ok.json()["rejected"] == 1
    for body_value in ({}, [], {"alerts": []}, {"alerts": [], "atomic": "yes"}, 5):
        assert api.call("POST", "/api/v1/alerts", body_value, token="ingest").status == 400


def test_ack_resolve_and_detail(api: Api, conn: psycopg.Connection, db_url: str) -> None:
    ensure_rule(db_url, name="all", webhook_ids=[add_webhook(conn, "hook", "webhook")])
    raised = api.call("POST", "/api/v1/alerts", [{"labels": {"alertname": "D"}}], token="ingest")
    alert_id = raised.json()["results"][0]["alert_id"]

    acked = api.call("POST", f"/api/v1/alerts/{alert_id}/ack", {"by": "alice"}, token="ingest")
    assert acked.status == 200 and acked.json()["status"] == "acknowledged"
    again = api.call("POST", f"/api/v1/alerts/{alert_id}/ack", token="ingest")
    assert again.status == 409 and again.json()["field"] == "alert_id"
    done = api.call("POST", f"/api/v1/alerts/{alert_id}/resolve", token="ingest")
    assert done.status == 200 and done.json()["status"] == "resolved"
    assert api.call("POST", "/api/v1/alerts/424242/ack", token="ingest").status == 404
    assert api.call("POST", "/api/v1/alerts/x/ack", token="ingest").status == 404

    detail = api.call("GET", f"/api/v1/alerts/{alert_id}", token="read")
    assert detail.status == 200
    alert = detail.json()
    assert alert["acknowledged_by"] == "alice" and alert["status"] == "resolved"
    events = sorted(d["event"] for d in alert["deliveries"])
    assert events == ["acknowledge", "resolve", "trigger"]
    assert all(d["webhook"] == "hook" for d in alert["deliveries"])
    assert api.call("GET", "/api/v1/alerts/424242", token="read").status == 404
