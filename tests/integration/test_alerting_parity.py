"""The SQL formatters (what gets queued) equal the Python reference formatters, hostile text
included, and the SQL and Python fingerprints agree."""

from datetime import UTC, datetime
from typing import Any

import psycopg

from alert_delivery.alerting.fingerprint import content_hash, fingerprint
from alert_delivery.channels import KINDS, render
from alert_delivery.db import query
from tests.support.alerting import (
    HOSTILE_DESCRIPTION,
    HOSTILE_TITLE,
    add_webhook,
    alert,
    queue_rows,
)

AT = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
EVENTS = ("trigger", "resolve", "acknowledge", "escalate")


def _messages(conn: psycopg.Connection, ids: list[int]) -> list[dict[str, Any]]:
    rows = conn.execute(query("alerting", "alert_messages"), {"alert_ids": ids}).fetchall()
    return [r[0] for r in rows]


def _sql(conn: psycopg.Connection, kind: str, event: str, ids: list[int]) -> dict[str, Any]:
    row = conn.execute(
        query("alerting", "format_payload"),
        {"kind": kind, "event": event, "alert_ids": ids, "at": AT},
    ).fetchone()
    assert row is not None
    return dict(row[0])


def test_sql_and_python_formatters_agree(conn: psycopg.Connection) -> None:
    ids = [
        alert(conn, title=HOSTILE_TITLE, description=HOSTILE_DESCRIPTION).alert_id,
        alert(
            conn,
            operation_type="commit <b>&amp;</b>",
            alert_type="P99_DEGRADATION",
            severity="WARNING",
            title="@channel " + "t" * 300,
            description="",
            details={"z_score": 1e-07, "metric_id": 12, "flag": True, "detected_at": "now"},
        ).alert_id,
        alert(
            conn,
            operation_type="branch",
            severity="INFO",
            title="plain",
            description="&" * 5000,
            details={"runbook_url": "javascript:alert(1)", "duration_ms": 3.0},
        ).alert_id,
    ]
    messages = _messages(conn, ids)
    assert [m["id"] for m in messages] == ids
    for kind in KINDS:
        for event in EVENTS:
            for group in ([ids[0]], [ids[1]], [ids[2]], ids):
                subset = [m for m in messages if m["id"] in group]
                expected = render(kind, event, subset, AT)
                assert _sql(conn, kind, event, group) == expected, (kind, event, group)


def test_fingerprints_agree(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT alert_delivery.alert_fingerprint('s', 'op|x', 'T', 'INFO'),"
        " alert_delivery.alert_content_hash('abc', 'tïtle', 'd')"
    ).fetchone()
    assert row == (fingerprint("s", "op|x", "T", "INFO"), content_hash("abc", "tïtle", "d"))
    raised = alert(conn)
    stored = conn.execute(
        "SELECT fingerprint, content_hash FROM alert_delivery.alerts WHERE alert_id = %s",
        (raised.alert_id,),
    ).fetchone()
    fp = fingerprint("test", "merge", "STATISTICAL", "CRITICAL")
    assert stored == (fp, content_hash(fp, "merge latency anomaly", "p99 is 5x the baseline"))


def test_batches_grown_one_alert_at_a_time_equal_formatting_the_whole_batch(db_url: str) -> None:
    # One transaction, so now() (the webhook envelope's stamp) is the same for both.
    with psycopg.connect(db_url) as conn:
        kinds = ("slack", "mattermost", "email", "webhook", "inbox")
        for kind in kinds:
            add_webhook(conn, kind, kind)
        conn.execute(
            "UPDATE alert_delivery.routing_rules SET target_kinds = %s"
            " WHERE name = 'default-warning'",
            (list(kinds),),
        )
        for i, op in enumerate(["merge", "commit <b>", "apply", "branch"]):
            alert(
                conn,
                operation_type=op,
                severity="WARNING",
                title=HOSTILE_TITLE if i == 1 else f"title {i}",
                description=HOSTILE_DESCRIPTION if i == 3 else "d",
            )
        rows = queue_rows(conn)
        assert sorted(r["kind"] for r in rows) == sorted(kinds)
        for row in rows:
            assert len(row["alert_ids"]) == 4
            expected = conn.execute(
                "SELECT alert_delivery.format_payload(%s, 'trigger', %s::bigint[], now())",
                (row["kind"], row["alert_ids"]),
            ).fetchone()
            assert expected is not None
            assert row["payload"] == expected[0], row["kind"]
