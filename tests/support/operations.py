"""Rows for operations tests, inserted straight into the 0001 tables."""

import socket
import urllib.request
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

# What a registered webhook's URL columns look like; neither may ever reach an exposition.
SECRET_TOKEN = "gAAAAAB-not-a-real-fernet-token-secret"
REDACTED_URL = "https://hooks.example.test/services/T0/B0/***"


def add_webhook(conn: psycopg.Connection, name: str, kind: str = "webhook", **cols: Any) -> int:
    values = {
        "name": name,
        "kind": kind,
        "url_encrypted": SECRET_TOKEN,
        "url_redacted": REDACTED_URL,
        "secret_encrypted": SECRET_TOKEN,
        **cols,
    }
    return _insert(conn, "webhooks", values, "webhook_id")


def add_health(conn: psycopg.Connection, webhook_id: int, **cols: Any) -> None:
    """Upsert: the delivery migration may already have created the row by trigger."""
    names = ["webhook_id", *cols]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols) or "webhook_id = EXCLUDED.webhook_id"
    sql = (
        f"INSERT INTO alert_delivery.webhook_health ({', '.join(names)})"
        f" VALUES ({', '.join(['%s'] * len(names))})"
        f" ON CONFLICT (webhook_id) DO UPDATE SET {updates}"
    )
    conn.execute(sql.encode(), [webhook_id, *cols.values()])


def add_alert(conn: psycopg.Connection, **cols: Any) -> int:
    n = conn.execute(b"SELECT count(*) FROM alert_delivery.alerts").fetchone()
    seq = n[0] if n else 0
    values = {
        "fingerprint": f"fp-{seq}",
        "content_hash": f"h-{seq}",
        "source": "test",
        "operation_type": "merge",
        "alert_type": "ANOMALY",
        "severity": "WARNING",
        "title": f"alert {seq}",
        **cols,
    }
    return _insert(conn, "alerts", values, "alert_id")


def add_delivery(conn: psycopg.Connection, webhook_id: int, **cols: Any) -> int:
    n = conn.execute(b"SELECT count(*) FROM alert_delivery.delivery_queue").fetchone()
    values = {"webhook_id": webhook_id, "event": "trigger", "seq": n[0] if n else 0, **cols}
    return _insert(conn, "delivery_queue", values, "delivery_id")


def add_log(conn: psycopg.Connection, webhook_id: int | None, event: str, **cols: Any) -> int:
    return _insert(
        conn, "delivery_log", {"webhook_id": webhook_id, "event": event, **cols}, "log_id"
    )


def add_worker(conn: psycopg.Connection, worker_id: str, **cols: Any) -> None:
    values = {"worker_id": worker_id, "hostname": "host-a", "pid": 4242, **cols}
    _insert(conn, "workers", values, "worker_id")


class Sql(str):
    """A column value that is a SQL expression (e.g. ``now() - interval '5 minutes'``)."""


def _insert(conn: psycopg.Connection, table: str, values: dict[str, Any], key: str) -> Any:
    names = ", ".join(values)
    params: list[Any] = []
    placeholders = []
    for value in values.values():
        if isinstance(value, Sql):
            placeholders.append(str(value))
        else:
            placeholders.append("%s")
            params.append(value)
    sql = (
        f"INSERT INTO alert_delivery.{table} ({names}) VALUES ({', '.join(placeholders)})"
        f" RETURNING {key}"
    )
    row = conn.execute(sql.encode(), params).fetchone()
    assert row is not None
    return row[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def insert(conn: psycopg.Connection, table: str, key: str, **values: Any) -> Any:
    """Insert one row into ``alert_delivery.<table>`` and return its ``key`` column."""
    return _insert(conn, table, values, key)


def view(conn: psycopg.Connection, name: str, order_by: str) -> list[dict[str, Any]]:
    """All rows of ``alert_delivery.<name>`` as dicts, in a stable order."""
    cur = conn.execute(f"SELECT * FROM alert_delivery.{name} ORDER BY {order_by}".encode())
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
