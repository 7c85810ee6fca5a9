"""Helpers for alerting tests: webhooks without URLs, alert defaults, queue and log readers."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alert_delivery.alerting import RaiseResult, raise_alert
from alert_delivery.channels import render

HOSTILE_TITLE = "Merge <!channel> @here *bold* _it_ <https://evil.example|click> & \x07\x1b[31m"
HOSTILE_DESCRIPTION = (
    "<script>alert(1)</script> @all `code` [link](https://evil.example) \u202eevil\n"
    + "x" * 100_000
)


def add_webhook(
    conn: psycopg.Connection,
    name: str,
    kind: str,
    *,
    config: dict[str, Any] | None = None,
    active: bool = True,
) -> int:
    """A webhooks row as the registration API leaves it (routing needs no URL)."""
    row = conn.execute(
        "INSERT INTO alert_delivery.webhooks (name, kind, config, active)"
        " VALUES (%s, %s, %s, %s) RETURNING webhook_id",
        (name, kind, Jsonb(config or {}), active),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_default_webhooks(conn: psycopg.Connection) -> dict[str, int]:
    """One active webhook of every kind, named after the kind."""
    kinds = ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox")
    return {kind: add_webhook(conn, kind, kind) for kind in kinds}


def alert(conn: psycopg.Connection, **overrides: Any) -> RaiseResult:
    fields: dict[str, Any] = {
        "source": "test",
        "operation_type": "merge",
        "alert_type": "STATISTICAL",
        "severity": "CRITICAL",
        "title": "merge latency anomaly",
        "description": "p99 is 5x the baseline",
        "details": {"z_score": 4.2, "duration_ms": 1250.5, "baseline_ms": 200.0},
    }
    fields.update(overrides)
    return raise_alert(conn, **fields)


RENDERED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def queue_rows(conn: psycopg.Connection, *, event: str | None = None) -> list[dict[str, Any]]:
    """Queue rows with ``payload`` as the engine would render it on first claim (at a fixed
    time) when the row has no body yet."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT q.*, w.kind, w.name AS webhook_name,"
            " alert_delivery.alert_messages(q.alert_ids) AS messages"
            " FROM alert_delivery.delivery_queue q"
            " JOIN alert_delivery.webhooks w USING (webhook_id)"
            " WHERE %(event)s::text IS NULL OR q.event = %(event)s ORDER BY q.delivery_id",
            {"event": event},
        ).fetchall()
    for row in rows:
        messages = row.pop("messages")
        if row["body"] is not None:
            row["payload"] = json.loads(row["body"])
        elif row["payload"] == {} and messages:
            row["payload"] = render(row["kind"], row["event"], messages, RENDERED_AT)
    return rows


def kinds_for(conn: psycopg.Connection, alert_id: int, event: str = "trigger") -> list[str]:
    rows = conn.execute(
        "SELECT w.kind FROM alert_delivery.delivery_queue q"
        " JOIN alert_delivery.webhooks w USING (webhook_id)"
        " WHERE q.alert_ids @> ARRAY[%s]::bigint[] AND q.event = %s ORDER BY w.kind",
        (alert_id, event),
    ).fetchall()
    return [r[0] for r in rows]


def log_events(conn: psycopg.Connection, alert_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT event FROM alert_delivery.delivery_log WHERE alert_id = %s ORDER BY log_id",
        (alert_id,),
    ).fetchall()
    return [r[0] for r in rows]


def alert_row(conn: psycopg.Connection, alert_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT * FROM alert_delivery.alerts WHERE alert_id = %s", (alert_id,)
        ).fetchone()
    assert row is not None
    return row


def age_notification(conn: psycopg.Connection, alert_ids: Sequence[int], hours: float) -> None:
    """Pretend the alerts were created and last notified ``hours`` ago."""
    conn.execute(
        "UPDATE alert_delivery.alerts SET last_notified_at = last_notified_at - make_interval("
        "secs => %s), created_at = created_at - make_interval(secs => %s)"
        " WHERE alert_id = ANY(%s)",
        (hours * 3600, hours * 3600, list(alert_ids)),
    )


def render_unrendered(conn: psycopg.Connection) -> int:
    """What the delivery engine does when it first claims rows: render each body once and keep
    it (tests that do not run the engine use this to freeze bodies at a point in time)."""
    rows = queue_rows(conn)
    fresh = [r for r in rows if r["body"] is None]
    for row in fresh:
        conn.execute(
            "UPDATE alert_delivery.delivery_queue SET body = %s WHERE delivery_id = %s",
            (json.dumps(row["payload"], separators=(",", ":")), row["delivery_id"]),
        )
    return len(fresh)
