"""Tokens: the CLI prints the token alone and stores only its hash; Bearer and basic auth;
401 / 403 / 429 with Retry-After / 413; a revoked token stops working."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from alert_delivery.api import ServeOptions
from alert_delivery.api.tokens import token_hash
from tests.support.api import Api, running_api
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alert_delivery", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running_api(db_url, ServeOptions(max_body=4096, token_ttl_s=0.2), slow=1.0) as running:
        yield running


def test_tokens_cli_prints_the_token_alone_and_stores_its_hash(
    db_url: str, conn: psycopg.Connection
) -> None:
    added = cli("tokens", "add", "prometheus", "--scope", "ingest")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert added.stdout == token + "\n" and token.startswith("adt_") and len(token) > 40
    dump = conn.execute("SELECT row_to_json(t)::text FROM alert_delivery.api_tokens t").fetchall()
    assert token not in str(dump) and token_hash(token) in str(dump)

    listed = cli("tokens", "list")
    assert "prometheus" in listed.stdout and "ingest" in listed.stdout
    assert token not in listed.stdout + listed.stderr
    again = cli("tokens", "add", "prometheus", "--scope", "read")
    assert again.returncode == 2 and "exists" in again.stderr and again.stdout == ""
    assert cli("tokens", "add", "x y", "--scope", "read").returncode == 2
    assert cli("tokens", "add", "z", "--scope", "root").returncode == 2
    assert cli("tokens", "add", "z", "--scope", "read", "--rate", "nan").returncode == 2
    assert cli("tokens", "revoke", "prometheus").returncode == 0
    assert cli("tokens", "revoke", "prometheus").returncode == 2
    assert "prometheus" not in cli("tokens", "list").stdout
    assert "prometheus" in cli("tokens", "list", "--all").stdout


def test_401_403_and_basic_auth(api: Api, conn: psycopg.Connection) -> None:
    path = "/api/v2/alerts"
    assert api.call("GET", path, token=None).status == 401
    unknown = api.call("GET", path, token="adt_" + "x" * 43)
    assert unknown.status == 401 and "Bearer" in unknown.headers["WWW-Authenticate"]
    assert "adt_" not in unknown.body.decode()
    assert api.call("GET", path, token="ingest").status == 403
    assert api.call("POST", path, [{"labels": {"a": "b"}}], token="read").status == 403
    assert api.call("GET", path, token="read").status == 200
    assert api.call("GET", path, token="read", basic=True).status == 200
    assert api.call("GET", path, token=None, headers={"Authorization": "Basic !!"}).status == 401
    assert api.call("GET", "/openapi.json", token=None).status == 200


def test_a_revoked_token_stops_working(api: Api, conn: psycopg.Connection) -> None:
    assert api.call("GET", "/api/v2/alerts", token="read").status == 200
    conn.execute("UPDATE alert_delivery.api_tokens SET revoked_at = now() WHERE name = 'read'")
    wait_for(
        lambda: api.call("GET", "/api/v2/alerts", token="read").status == 401,
        "the server refuses the revoked token",
    )


def test_rate_limit_429_with_retry_after(api: Api) -> None:
    body = [{"labels": {"alertname": "r"}}]
    assert api.call("POST", "/api/v2/alerts", body, token="slow").status == 200
    limited = api.call("POST", "/api/v2/alerts", body, token="slow")
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    assert api.call("POST", "/api/v2/alerts", body, token="ingest").status == 200, "per token"


def test_body_cap_413(api: Api, conn: psycopg.Connection) -> None:
    big = [{"labels": {"alertname": "big"}, "annotations": {"d": "x" * 5000}}]
    reply = api.call("POST", "/api/v2/alerts", big, token="ingest")
    assert reply.status == 413
    chunked = api.call(
        "POST",
        "/api/v1/alerts",
        raw=b"[" + b" " * 5000 + b"]",
        token="ingest",
        headers={"Transfer-Encoding": "chunked"},
    )
    assert chunked.status in (400, 413)
    row = conn.execute("SELECT count(*) FROM alert_delivery.alerts").fetchone()
    assert row == (0,)
