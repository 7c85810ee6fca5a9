"""Upgrading a database that holds data: build it at 0007 with the SQL API of that era, upgrade to
head, and nothing is lost. New-model facts (labels, ...) are checked once their columns exist.
"""

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from alert_delivery.db.migrations import discover, upgrade

# The last version landed before the labels model (0008): the data below is 0007-era.
LEGACY_VERSION = 7
COUNTED_TABLES = (
    "alerts",
    "routing_rules",
    "silences",
    "inhibit_rules",
    "escalation_routes",
    "delivery_queue",
    "delivery_log",
)
# Columns the new model keeps as they are (PLAN.md: well-known labels and annotations).
ALERT_COLUMNS = (
    "alert_id, source, operation_type, alert_type, severity, title, description, status,"
    " occurrences, acknowledged_by"
)
WELL_KNOWN_LABELS = ("source", "operation_type", "alert_type", "severity")
MATCHER_OPS = {"=", "!=", "=~", "!~"}


def column_exists(conn: psycopg.Connection, table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema ="
        " 'alert_delivery' AND table_name = %s AND column_name = %s)",
        (table, column),
    ).fetchone()
    return bool(row and row[0])


def one(conn: psycopg.Connection, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    row = conn.execute(sql.encode(), params).fetchone()
    assert row is not None, sql
    return tuple(row)


def raise_legacy(conn: psycopg.Connection, *args: Any) -> tuple[int, str]:
    """The 0007-era producer call: positional text arguments, optional details jsonb."""
    placeholders = ", ".join(["%s"] * len(args))
    alert_id, outcome = one(
        conn, f"SELECT * FROM alert_delivery.raise_alert({placeholders})", tuple(args)
    )
    return int(alert_id), str(outcome)


def load_legacy_data(conn: psycopg.Connection) -> dict[str, int]:
    """Representative 0007 data on top of the seeds (default rules, an inhibit rule); returns
    the alert ids by role."""
    (webhook_id,) = one(
        conn,
        "INSERT INTO alert_delivery.webhooks (name, kind, url_encrypted, config)"
        " VALUES ('ops-inbox', 'inbox', NULL, '{\"recipients\": [\"ops\"]}') RETURNING webhook_id",
    )
    conn.execute(
        b"INSERT INTO alert_delivery.routing_rules (name, severity, target_kinds, group_window_s)"
        b" VALUES ('everything-to-inbox', 'ALL', '{inbox}', 0)"
    )
    (rule_id,) = one(
        conn,
        "INSERT INTO alert_delivery.routing_rules (name, priority, severity, operation_type,"
        " alert_type, escalate_after_s, group_window_s, repeat_interval_s, group_by, max_batch)"
        " VALUES ('critical-query', 10, 'CRITICAL', 'query', 'P99_DEGRADATION', 300, 0, 3600,"
        " '{severity,operation_type}', 5) RETURNING rule_id",
    )
    conn.execute(
        "INSERT INTO alert_delivery.routing_rule_targets (rule_id, webhook_id) VALUES (%s, %s)",
        (rule_id, webhook_id),
    )
    conn.execute(
        b"INSERT INTO alert_delivery.routing_rules (name, severity, notify_inapp, is_fallback)"
        b" VALUES ('legacy-inapp-fallback', 'ALL', true, true)"
    )
    conn.execute(
        b"INSERT INTO alert_delivery.silences"
        b" (operation_type, alert_type, starts_at, ends_at, reason, created_by) VALUES"
        b" ('compaction', 'ALL', '2020-01-01T00:00Z', '2999-01-01T00:00Z', 'maintenance', 'ops'),"
        b" ('ALL', 'COMBINED', '2020-01-01T00:00Z', '2020-01-02T00:00Z', 'long over', 'ops')"
    )
    conn.execute(
        b"INSERT INTO alert_delivery.inhibit_rules (source_severity, target_severities,"
        b" equal_operation, active) VALUES ('WARNING', '{INFO}', false, false)"
    )
    conn.execute(
        b"INSERT INTO alert_delivery.escalation_routes (name, severity, target_kinds)"
        b" VALUES ('oncall', 'CRITICAL', '{inbox}')"
    )

    ids: dict[str, int] = {}
    ids["merge"], outcome = raise_legacy(
        conn, "src", "merge", "STATISTICAL", "WARNING", "title", "desc"
    )
    assert outcome == "notified"
    again, outcome = raise_legacy(conn, "src", "merge", "STATISTICAL", "WARNING", "title", "desc")
    assert (again, outcome) == (ids["merge"], "deduplicated")
    ids["critical"], outcome = raise_legacy(
        conn,
        "detector",
        "query",
        "P99_DEGRADATION",
        "CRITICAL",
        "p99 of query doubled",
        "p99 120 ms against a baseline of 60 ms",
        json.dumps({"p99_ms": 120, "baseline_p99_ms": 60}),
    )
    assert outcome == "notified"
    ids["inhibited"], outcome = raise_legacy(
        conn, "detector", "query", "STATISTICAL", "WARNING", "query slower", "z = 4.2"
    )
    assert outcome == "inhibited"
    ids["silenced"], outcome = raise_legacy(
        conn, "detector", "compaction", "STATISTICAL", "INFO", "compaction slower", ""
    )
    assert outcome == "silenced"
    (ids["acknowledged"], outcome) = one(
        conn,
        "SELECT * FROM alert_delivery.raise_alert(%s::jsonb)",
        (
            json.dumps(
                {
                    "source": "api",
                    "operation_type": "insert",
                    "alert_type": "COMBINED",
                    "severity": "INFO",
                    "title": "insert latency",
                    "details": {"samples": 42},
                }
            ),
        ),
    )
    assert outcome == "notified"
    conn.execute("SELECT alert_delivery.acknowledge_alert(%s, 'alice')", (ids["acknowledged"],))
    rows = conn.execute(
        "SELECT * FROM alert_delivery.raise_alerts(%s::jsonb)",
        (
            json.dumps(
                [
                    {
                        "operation_type": "select",
                        "alert_type": "STATISTICAL",
                        "severity": "WARNING",
                        "title": "select slower",
                    }
                ]
            ),
        ),
    ).fetchall()
    assert len(rows) == 1
    ids["resolved"] = int(rows[0][0])
    conn.execute("SELECT alert_delivery.resolve_alert(%s, 'bob')", (ids["resolved"],))
    return ids


def counts(conn: psycopg.Connection) -> dict[str, int]:
    return {
        table: int(one(conn, f"SELECT count(*) FROM alert_delivery.{table}")[0])
        for table in COUNTED_TABLES
    }


def alert_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    sql = f"SELECT {ALERT_COLUMNS} FROM alert_delivery.alerts ORDER BY alert_id"
    return [tuple(r) for r in conn.execute(sql.encode())]


def queue_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    sql = (
        "SELECT delivery_id, alert_id, alert_ids, webhook_id, event, status, payload"
        " FROM alert_delivery.delivery_queue ORDER BY delivery_id"
    )
    return [tuple(r) for r in conn.execute(sql.encode())]


def label_fingerprint(labels: dict[str, str]) -> str:
    """PLAN.md: sha256 hex of ``name \\x1f value`` per label sorted by name, joined by ``\\x1e``."""
    text = "\x1e".join(f"{name}\x1f{labels[name]}" for name in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()


def assert_labels_match_columns(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        b"SELECT alert_id, labels, fingerprint, source, operation_type, alert_type, severity"
        b" FROM alert_delivery.alerts ORDER BY alert_id"
    ).fetchall()
    assert rows
    for alert_id, labels, fingerprint, *columns in rows:
        assert isinstance(labels, dict), alert_id
        assert set(WELL_KNOWN_LABELS) <= set(labels), (alert_id, labels)
        assert [labels[name] for name in WELL_KNOWN_LABELS] == columns, (alert_id, labels)
        assert all(isinstance(v, str) for v in labels.values()), (alert_id, labels)
        assert fingerprint == label_fingerprint(labels), alert_id


def assert_matchers_well_formed(conn: psycopg.Connection, table: str, column: str) -> None:
    for (matchers,) in conn.execute(f"SELECT {column} FROM alert_delivery.{table}".encode()):
        assert isinstance(matchers, list), (table, matchers)
        for matcher in matchers:
            assert isinstance(matcher, list) and len(matcher) == 3, (table, matcher)
            assert matcher[1] in MATCHER_OPS, (table, matcher)


@pytest.fixture
def legacy_conn(empty_db_url: str) -> Iterator[tuple[psycopg.Connection, dict[str, int]]]:
    """A database at 0007 holding 0007-era data, not yet upgraded to head."""
    assert max(m.version for m in discover()) >= LEGACY_VERSION
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        upgrade(conn, target=LEGACY_VERSION)
        ids = load_legacy_data(conn)
        yield conn, ids


def test_upgrade_keeps_every_row(legacy_conn: tuple[psycopg.Connection, dict[str, int]]) -> None:
    conn, ids = legacy_conn
    before_counts = counts(conn)
    before_alerts = alert_rows(conn)
    before_queue = queue_rows(conn)
    # The data exercises every table counted (a zero would prove nothing).
    assert all(before_counts.values()), before_counts
    assert before_counts["alerts"] == len(ids)

    upgrade(conn)

    assert counts(conn) == before_counts
    assert alert_rows(conn) == before_alerts
    assert [r[0] for r in alert_rows(conn)] == sorted(ids.values())
    # Legacy deliveries keep their rendered payload: the engine sends it as before.
    assert queue_rows(conn) == before_queue

    # New-model facts, once their migration has landed.
    if column_exists(conn, "alerts", "labels"):
        assert_labels_match_columns(conn)
    if column_exists(conn, "delivery_queue", "body"):
        legacy_bodies = conn.execute(b"SELECT body FROM alert_delivery.delivery_queue").fetchall()
        assert legacy_bodies == [(None,)] * before_counts["delivery_queue"]
    if column_exists(conn, "webhooks", "send_resolved"):
        assert conn.execute(b"SELECT send_resolved FROM alert_delivery.webhooks").fetchall() == [
            (True,)
        ]
    for table, column in (
        ("routing_rules", "matchers"),
        ("silences", "matchers"),
        ("escalation_routes", "matchers"),
        ("inhibit_rules", "source_matchers"),
        ("inhibit_rules", "target_matchers"),
    ):
        if column_exists(conn, table, column):
            assert_matchers_well_formed(conn, table, column)

    # The producer API that stays (PLAN.md): raise_alert(jsonb) on the upgraded database.
    alert_id, outcome = one(
        conn,
        "SELECT * FROM alert_delivery.raise_alert(%s::jsonb)",
        (
            json.dumps(
                {
                    "operation_type": "after-upgrade",
                    "alert_type": "STATISTICAL",
                    "severity": "WARNING",
                    "title": "raised after the upgrade",
                }
            ),
        ),
    )
    assert alert_id not in ids.values()
    assert outcome == "notified"


def test_upgraded_alerts_carry_labels(
    legacy_conn: tuple[psycopg.Connection, dict[str, int]],
) -> None:
    conn, ids = legacy_conn
    upgrade(conn)
    if not column_exists(conn, "alerts", "labels"):
        pytest.skip("labels model not migrated yet")
    assert_labels_match_columns(conn)

    # The positional producer call still works, and a legacy open alert deduplicates against
    # the same identity raised after the upgrade (its fingerprint was recomputed from labels).
    alert_id, outcome = raise_legacy(
        conn, "src", "merge", "STATISTICAL", "WARNING", "title", "desc"
    )
    assert (alert_id, outcome) == (ids["merge"], "deduplicated")
    new_id, outcome = raise_legacy(
        conn, "src", "merge-after", "STATISTICAL", "WARNING", "title", "desc"
    )
    assert new_id not in ids.values()
    assert outcome == "notified"
    assert_labels_match_columns(conn)
