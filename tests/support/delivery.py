"""Helpers for delivery tests: settings with a test key and the 127.0.0.1 allow-list, queue rows."""

import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg.types.json import Jsonb

from alert_delivery.config import HttpClient, Settings, load_settings
from alert_delivery.delivery.engine import EngineConfig
from alert_delivery.delivery.sender import SenderConfig

TEST_KEY = Fernet.generate_key().decode()
FAST = EngineConfig(
    sender=SenderConfig(concurrency=20, connect_timeout_s=1.0, read_timeout_s=0.5),
    lease_s=30.0,
    breaker_cooldown_s=1.0,
    smtp_timeout_s=2.0,
)


@pytest.fixture
def delivery_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A migrated database, a fixed key and 127.0.0.1 allow-listed (as the demo does)."""
    monkeypatch.setenv("ALERT_DELIVERY_SECRET_KEYS", TEST_KEY)
    monkeypatch.setenv("ALERT_DELIVERY_ALLOWED_TARGETS", "127.0.0.1/32")
    yield load_settings()


HTTP_CLIENTS = [
    pytest.param("aiohttp"),
    pytest.param(
        "pyreqwest",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("pyreqwest") is None,
            reason="pyreqwest is not installed (pip install '.[pyreqwest]')",
        ),
    ),
]


@pytest.fixture(params=HTTP_CLIENTS)
def http_client(request: pytest.FixtureRequest) -> HttpClient:
    """Each HTTP client the sender can be (``ALERT_DELIVERY_HTTP_CLIENT``), one test each."""
    client: HttpClient = request.param
    return client


@pytest.fixture
def client_env(delivery_env: Settings, http_client: HttpClient) -> Settings:
    """``delivery_env`` sending through each HTTP client in turn."""
    return replace(delivery_env, http_client=http_client)


def enqueue(
    conn: psycopg.Connection,
    webhook_id: int,
    payloads: Sequence[dict[str, Any]],
    *,
    event: str = "trigger",
    notify: bool = False,
) -> list[int]:
    """Insert queue rows the way alerting does (no alert row needed: alert_id may be NULL)."""
    ids: list[int] = []
    with conn.cursor() as cur:
        for payload in payloads:
            cur.execute(
                "INSERT INTO alert_delivery.delivery_queue (webhook_id, event, payload)"
                " VALUES (%s, %s, %s) RETURNING delivery_id",
                (webhook_id, event, Jsonb(payload)),
            )
            row = cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
        if notify and ids:
            cur.execute("SELECT pg_notify('alert_delivery_queue', %s)", (str(max(ids)),))
    return ids


def queue_rows(conn: psycopg.Connection) -> dict[int, dict[str, Any]]:
    cur = conn.execute(
        "SELECT delivery_id, status, attempts, last_status, last_error, next_attempt_at,"
        " message_id::text FROM alert_delivery.delivery_queue ORDER BY delivery_id"
    )
    cols = [c.name for c in cur.description or []]
    return {int(r[0]): dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def log_events(conn: psycopg.Connection, delivery_id: int | None = None) -> list[str]:
    if delivery_id is None:
        rows = conn.execute(
            "SELECT event FROM alert_delivery.delivery_log ORDER BY log_id"
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT event FROM alert_delivery.delivery_log WHERE delivery_id = %s ORDER BY log_id",
            (delivery_id,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def make_due(conn: psycopg.Connection) -> None:
    """Skip the wait of scheduled retries (the schedule itself is tested separately)."""
    conn.execute(
        "UPDATE alert_delivery.delivery_queue SET next_attempt_at = now() WHERE status = 'pending'"
    )


def insert_alerts(conn: psycopg.Connection, count: int = 1, **overrides: Any) -> list[int]:
    """Alert rows inserted past the alerting pipeline (nothing is routed or enqueued for them);
    each gets its own fingerprint, so any number may be open at once."""
    fields: dict[str, Any] = {
        "source": "detection",
        "operation_type": "merge",
        "alert_type": "STATISTICAL",
        "severity": "CRITICAL",
        "title": "merge: statistical latency anomaly",
        "description": "p99 is 5x the baseline",
        "payload": {"z_score": 4.2, "duration_ms": 1250.5},
    }
    fields.update(overrides)
    fields["payload"] = Jsonb(fields["payload"])
    cols = ", ".join(fields)
    marks = ", ".join(["%s"] * len(fields))
    ids: list[int] = []
    with conn.transaction():
        for _ in range(count):
            row = conn.execute(
                (
                    f"INSERT INTO alert_delivery.alerts (fingerprint, content_hash, {cols})"
                    f" VALUES (md5(random()::text) || md5(random()::text), md5(random()::text),"
                    f" {marks})"
                    " RETURNING alert_id"
                ).encode(),
                list(fields.values()),
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
    return ids


def enqueue_new(
    conn: psycopg.Connection,
    webhook_id: int,
    groups: Sequence[Sequence[int]],
    *,
    event: str = "trigger",
) -> list[int]:
    """New-style queue rows, as the SQL enqueue leaves them: payload '{}', body NULL, one row per
    group of alert ids (the first is the row's alert_id)."""
    ids: list[int] = []
    for seq, group in enumerate(groups):
        row = conn.execute(
            "INSERT INTO alert_delivery.delivery_queue"
            " (alert_id, alert_ids, webhook_id, event, seq, payload)"
            " VALUES (%s, %s, %s, %s, %s, '{}') RETURNING delivery_id",
            (group[0] if group else None, list(group), webhook_id, event, seq),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids


def stored_body(conn: psycopg.Connection, delivery_id: int) -> str | None:
    row = conn.execute(
        "SELECT body FROM alert_delivery.delivery_queue WHERE delivery_id = %s", (delivery_id,)
    ).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])
