"""Alertmanager API v2 over real HTTP on 127.0.0.1: raise, re-send (dedup), endsAt, silences."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alert_delivery.alerting.routing import ensure_rule
from alert_delivery.api import ServeOptions
from tests.support.alerting import add_webhook
from tests.support.api import Api, running_api
from tests.support.waiting import wait_for


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running_api(db_url, ServeOptions(sweep_interval_s=0.1)) as running:
        yield running


def _at(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat().replace("+00:00", "Z")


def _alerts(conn: psycopg.Connection) -> list[tuple[int, str, dict[str, str], int, str]]:
    return conn.execute(
        "SELECT alert_id, status, annotations, occurrences, severity"
        " FROM alert_delivery.alerts ORDER BY alert_id"
    ).fetchall()


def _queued(conn: psycopg.Connection, event: str = "trigger") -> int:
    row = conn.execute(
        "SELECT count(*) FROM alert_delivery.delivery_queue WHERE event = %s", (event,)
    ).fetchone()
    return int(row[0]) if row else 0


PROM = {
    "labels": {"alertname": "HighLatency", "severity": "critical", "job": "api"},
    "annotations": {"summary": "p99 above 1 s"},
    "generatorURL": "http://prometheus.example/graph?g0.expr=up",
}


def test_prometheus_resends_deduplicate_and_update(
    api: Api, conn: psycopg.Connection, db_url: str
) -> None:
    ensure_rule(db_url, name="all", webhook_ids=[add_webhook(conn, "hook", "webhook")])
    first = api.call(
        "POST", "/api/v2/alerts", [{**PROM, "startsAt": _at(-5), "endsAt": _at(60)}], token="ingest"
    )
    assert (first.status, first.body) == (200, b"")
    resend = {**PROM, "annotations": {"summary": "p99 above 2 s"}, "endsAt": _at(120)}
    assert api.call("POST", "/api/v2/alerts", [resend], token="ingest").status == 200
    [(alert_id, status, annotations, occurrences, severity)] = _alerts(conn)
    assert (status, occurrences, severity) == ("firing", 2, "CRITICAL")
    assert annotations == {"summary": "p99 above 2 s"}
    assert _queued(conn) == 1, "a re-send is never a new notification"

    listed = api.call("GET", "/api/v2/alerts?filter=alertname%3D%22HighLatency%22", token="read")
    assert listed.status == 200
    [got] = listed.json()
    assert got["labels"]["alertname"] == "HighLatency"
    assert got["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []}
    assert got["receivers"] == [{"name": "hook"}]
    assert got["endsAt"].endswith("Z") and got["generatorURL"] == PROM["generatorURL"]
    assert api.call("GET", "/api/v2/alerts?filter=job%3D%22db%22", token="read").json() == []

    # Prometheus's resolved notification: endsAt in the past.
    ended = api.call("POST", "/api/v2/alerts", [{**PROM, "endsAt": _at(-1)}], token="ingest")
    assert ended.status == 200
    assert _alerts(conn)[0][1] == "resolved"
    assert _queued(conn, "resolve") == 1
    assert api.call("GET", "/api/v2/alerts", token="read").json() == []
    assert alert_id


def test_an_alert_whose_ends_at_passes_without_a_resend_resolves(
    api: Api, conn: psycopg.Connection
) -> None:
    assert (
        api.call("POST", "/api/v2/alerts", [{**PROM, "endsAt": _at(0.5)}], token="ingest").status
        == 200
    )
    assert _alerts(conn)[0][1] == "firing"
    wait_for(lambda: _alerts(conn)[0][1] == "resolved", "the endsAt sweep resolves it")
    row = conn.execute("SELECT resolved_at IS NOT NULL FROM alert_delivery.alerts").fetchone()
    assert row == (True,)


def test_invalid_alerts_are_refused_by_field_and_the_rest_kept(
    api: Api, conn: psycopg.Connection
) -> None:
    batch = [
        PROM,
        {"labels": {"alertname": "Paging", "severity": "page"}},
        {"labels": {"alertname": "NoSeverity"}},
        {"labels": {"bad-name": "x"}},
        {"labels": {"alertname": "Late"}, "endsAt": "yesterday"},
        "not an object",
    ]
    reply = api.call("POST", "/api/v2/alerts", batch, token="ingest")
    assert reply.status == 400
    fields = [e["field"] for e in reply.json()["errors"]]
    assert fields == [
        "alerts[1].labels.severity",
        "alerts[3].labels",
        "alerts[4].endsAt",
        "alerts[5]",
    ]
    assert "page" in reply.json()["errors"][0]["message"]
    kept = {r[4] for r in _alerts(conn)}
    assert len(_alerts(conn)) == 2 and kept == {"CRITICAL", "WARNING"}, "missing is WARNING"
    assert api.call("POST", "/api/v2/alerts", {"labels": {}}, token="ingest").status == 400


def test_silences_round_trip_and_hold_new_alerts(api: Api, conn: psycopg.Connection) -> None:
    body = {
        "matchers": [
            {"name": "alertname", "value": "HighLatency", "isRegex": False, "isEqual": True},
            {"name": "job", "value": "api|web", "isRegex": True},
        ],
        "startsAt": _at(0),
        "endsAt": _at(3600),
        "createdBy": "ops",
        "comment": "deploy window",
    }
    created = api.call("POST", "/api/v2/silences", body)
    assert created.status == 200
    silence_id = created.json()["silenceID"]
    assert api.call("POST", "/api/v2/silences", body, token="ingest").status == 403

    [listed] = api.call("GET", "/api/v2/silences", token="read").json()
    assert listed["id"] == silence_id and listed["status"] == {"state": "active"}
    assert listed["matchers"][1] == {
        "name": "job",
        "value": "api|web",
        "isRegex": True,
        "isEqual": True,
    }
    assert listed["createdBy"] == "ops" and listed["comment"] == "deploy window"
    assert api.call("GET", "/api/v2/silences?filter=alertname%3Dother", token="read").json() == []
    assert api.call("GET", f"/api/v2/silence/{silence_id}", token="read").status == 200

    assert api.call("POST", "/api/v2/alerts", [PROM], token="ingest").status == 200
    [(_id, _s, _a, _o, _sev)] = _alerts(conn)
    held = conn.execute("SELECT held_reason FROM alert_delivery.alerts").fetchone()
    assert held == ("silenced",)
    assert api.call("GET", "/api/v2/alerts?silenced=false", token="read").json() == []
    [shown] = api.call("GET", "/api/v2/alerts", token="read").json()
    assert shown["status"]["state"] == "suppressed"
    assert shown["status"]["silencedBy"] == [silence_id]

    assert api.call("DELETE", f"/api/v2/silence/{silence_id}").status == 200
    assert api.call("DELETE", f"/api/v2/silence/{silence_id}").status == 200, "idempotent"
    assert api.call("DELETE", "/api/v2/silence/999999").status == 404
    assert api.call("DELETE", "/api/v2/silence/not-a-uuid").status == 404
    [expired] = api.call("GET", "/api/v2/silences", token="read").json()
    assert expired["status"]["state"] == "expired"

    bad = dict(body, matchers=[{"name": "job", "value": "(?i)api", "isRegex": True}])
    refused = api.call("POST", "/api/v2/silences", bad)
    assert refused.status == 400 and refused.json()["field"] == "matchers[0]"
    assert api.call("POST", "/api/v2/silences", dict(body, comment="")).json()["field"] == "comment"


def test_status_and_probes(api: Api) -> None:
    status = api.call("GET", "/api/v2/status", token="read").json()
    assert set(status) == {"cluster", "versionInfo", "config", "uptime"}
    assert api.call("GET", "/-/healthy", token=None).status == 200
    assert api.call("GET", "/-/ready", token=None).status == 200
    assert api.call("GET", "/api/v2/receivers", token="read").status == 200
