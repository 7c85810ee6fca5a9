"""Durable on return: a 2xx means committed (alert, routing, queue rows); a database that is
down answers 503 with Retry-After and writes nothing. OpenAPI covers every route; client input
never causes a 500."""

import json
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import conninfo

from alert_delivery.alerting.routing import ensure_rule
from alert_delivery.api.app import ROUTES
from alert_delivery.api.openapi import document
from tests.support.alerting import add_webhook
from tests.support.api import Api, running_api


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running_api(db_url) as running:
        yield running


def test_a_2xx_means_the_alert_and_its_deliveries_are_committed(
    api: Api, conn: psycopg.Connection, db_url: str
) -> None:
    ensure_rule(db_url, name="all", webhook_ids=[add_webhook(conn, "hook", "webhook")])
    batch = [{"labels": {"alertname": f"A{i}"}} for i in range(50)]
    assert api.call("POST", "/api/v2/alerts", batch, token="ingest").status == 200
    # Another session sees everything the moment the answer arrives.
    row = conn.execute(
        "SELECT (SELECT count(*) FROM alert_delivery.alerts),"
        " (SELECT count(*) FROM alert_delivery.delivery_queue)"
    ).fetchone()
    assert row == (50, 50)


def test_database_down_is_503_with_retry_after_and_nothing_written(
    api: Api, db_url: str, pg_server_url: str, conn: psycopg.Connection
) -> None:
    assert api.call("GET", "/api/v2/alerts", token="ingest").status in (200, 403)
    assert (
        api.call("POST", "/api/v2/alerts", [{"labels": {"a": "warm"}}], token="ingest").status
        == 200
    )
    dbname = conninfo.conninfo_to_dict(db_url)["dbname"]
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false'.encode())
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        try:
            for path, body in (
                ("/api/v2/alerts", [{"labels": {"a": "down"}}]),
                ("/api/v1/alerts", [{"labels": {"a": "down"}}]),
                (
                    "/v2/enqueue",
                    {
                        "routing_key": api.tokens["ingest"],
                        "event_action": "trigger",
                        "payload": {"summary": "s", "source": "h", "severity": "info"},
                    },
                ),
            ):
                reply = api.call("POST", path, body, token="ingest")
                assert reply.status == 503, (path, reply.body)
                assert reply.headers["Retry-After"] == "2"
                assert "adt_" not in reply.body.decode()
            assert api.call("GET", "/-/ready", token=None).status == 503
            assert api.call("GET", "/-/healthy", token=None).status == 200
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true'.encode())
    reply = api.call("POST", "/api/v2/alerts", [{"labels": {"a": "back"}}], token="ingest")
    assert reply.status == 200
    with psycopg.connect(db_url) as fresh:
        labels = [r[0] for r in fresh.execute("SELECT labels FROM alert_delivery.alerts")]
    assert {"a": "down"} not in labels and {"a": "back"} in labels


def test_openapi_documents_every_route(api: Api) -> None:
    doc = api.call("GET", "/openapi.json", token=None).json()
    assert doc["openapi"] == "3.1.0" and doc == json.loads(json.dumps(document()))
    for method, path, _handler, _scope in ROUTES.values():
        assert method.lower() in doc["paths"][path], (method, path)
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for ref in json.dumps(op).split('"$ref": "#/components/schemas/')[1:]:
                assert ref.split('"')[0] in doc["components"]["schemas"], (path, ref)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ALERTISH = st.fixed_dictionaries(
    {},
    optional={
        "labels": st.dictionaries(st.text(max_size=10), JSONISH, max_size=3),
        "annotations": JSONISH,
        "startsAt": JSONISH | st.just("2026-01-01T00:00:00Z"),
        "endsAt": JSONISH | st.just("0001-01-01T00:00:00Z"),
        "starts_at": JSONISH,
        "ends_at": JSONISH,
        "details": JSONISH,
        "generatorURL": JSONISH,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(ALERTISH | JSONISH, max_size=4) | JSONISH)
def test_client_input_never_causes_a_500(api: Api, body: object) -> None:
    for path in ("/api/v2/alerts", "/api/v1/alerts", "/v2/enqueue", "/api/v2/silences"):
        reply = api.call("POST", path, body, token="admin")
        assert reply.status < 500, (path, body, reply.body)
