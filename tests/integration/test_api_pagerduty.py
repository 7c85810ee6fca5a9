"""PagerDuty Events API v2: trigger, acknowledge and resolve by dedup_key; PagerDuty's answers."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.api import Api, running_api


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running_api(db_url) as running:
        yield running


def _event(api: Api, action: str, **fields: Any) -> dict[str, Any]:
    return {"routing_key": api.tokens["ingest"], "event_action": action, **fields}


PAYLOAD = {
    "summary": "disk 95% on db-1",
    "source": "db-1",
    "severity": "error",
    "component": "postgres",
    "custom_details": {"free_gb": 3},
}


def test_trigger_acknowledge_resolve_by_dedup_key(api: Api, conn: psycopg.Connection) -> None:
    trigger = api.call(
        "POST",
        "/v2/enqueue",
        _event(api, "trigger", dedup_key="disk-db-1", payload=PAYLOAD),
        token=None,
    )
    assert trigger.status == 202
    assert trigger.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "disk-db-1",
    }
    again = _event(api, "trigger", dedup_key="disk-db-1", payload=PAYLOAD)
    assert api.call("POST", "/v2/enqueue", again, token=None).status == 202
    row = conn.execute(
        "SELECT status, severity, title, occurrences, payload, annotations"
        " FROM alert_delivery.alerts"
    ).fetchall()
    assert len(row) == 1
    status, severity, title, occurrences, details, annotations = row[0]
    assert (status, severity, title, occurrences) == ("firing", "CRITICAL", PAYLOAD["summary"], 2)
    assert details == {"free_gb": 3} and annotations["component"] == "postgres"

    ack = api.call(
        "POST", "/v2/enqueue", _event(api, "acknowledge", dedup_key="disk-db-1"), token=None
    )
    assert ack.status == 202
    assert conn.execute("SELECT status FROM alert_delivery.alerts").fetchone() == ("acknowledged",)
    done = api.call(
        "POST", "/v2/enqueue", _event(api, "resolve", dedup_key="disk-db-1"), token=None
    )
    assert done.status == 202
    assert conn.execute("SELECT status FROM alert_delivery.alerts").fetchone() == ("resolved",)

    generated = api.call("POST", "/v2/enqueue", _event(api, "trigger", payload=PAYLOAD), token=None)
    assert generated.status == 202 and len(generated.json()["dedup_key"]) == 32


def test_invalid_events_and_keys(api: Api) -> None:
    cases = [
        (_event(api, "trigger"), "payload"),
        (_event(api, "trigger", payload={**PAYLOAD, "severity": "page"}), "payload.severity"),
        (_event(api, "trigger", payload={**PAYLOAD, "summary": ""}), "payload.summary"),
        (_event(api, "explode", dedup_key="k"), "event_action"),
        (_event(api, "resolve"), "dedup_key"),
        (_event(api, "trigger", dedup_key="", payload=PAYLOAD), "dedup_key"),
        (_event(api, "trigger", payload={**PAYLOAD, "timestamp": "noon"}), "payload.timestamp"),
    ]
    for event, field in cases:
        reply = api.call("POST", "/v2/enqueue", event, token=None)
        assert reply.status == 400, (event, reply.body)
        body = reply.json()
        assert body["status"] == "invalid event" and body["field"] == field, body
    missing = {"event_action": "trigger", "payload": PAYLOAD}
    assert api.call("POST", "/v2/enqueue", missing, token=None).status == 401
    wrong = {**missing, "routing_key": "R0UT1NGKEY0000000000000000000000"}
    assert api.call("POST", "/v2/enqueue", wrong, token=None).status == 401
    read_key = {**missing, "routing_key": api.tokens["read"]}
    assert api.call("POST", "/v2/enqueue", read_key, token=None).status == 403
