"""raise_alerts (set-based) leaves exactly what raise_alert per alert, in order, leaves.

Two fresh databases get the same setup; one raises the batch with ``raise_alerts``, the other
calls ``raise_alert`` for each alert inside one transaction. Every alerts, delivery_queue and
delivery_log row must be equal (timestamps relative to the transaction's ``now()``).
"""

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from alert_delivery.alerting import RaiseResult, raise_alert, raise_alerts
from alert_delivery.db.connection import with_dbname
from alert_delivery.errors import InvalidInput
from tests.support.alerting import HOSTILE_DESCRIPTION, HOSTILE_TITLE, add_webhook

Setup = Callable[[psycopg.Connection], None]
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture
def twin_urls(pg_server_url: str, template_db: str) -> Iterator[tuple[str, str]]:
    names = [f"ad_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'.encode())
    yield with_dbname(pg_server_url, names[0]), with_dbname(pg_server_url, names[1])
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _alert(i: int, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "source": "test",
        "operation_type": f"op-{i}",
        "alert_type": ("STATISTICAL", "P99_DEGRADATION", "COMBINED")[i % 3],
        "severity": ("CRITICAL", "WARNING", "INFO", "INFO", "WARNING")[i % 5],
        "title": f"alert {i}",
        "description": f"p99 {i % 7 + 2}x the baseline",
        "details": {"z_score": 3.5 + i % 5, "metric_id": i},
    }
    fields.update(overrides)
    return fields


def _normalise(value: Any, now: datetime) -> Any:
    if isinstance(value, datetime):
        return "NOW" if value == now else round((value - now).total_seconds() / 60)
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
        return ISO.sub("TS", text)
    return value


def _check_event_ids(payload: dict[str, Any]) -> None:
    """Generic webhook ids depend on now(): check how they are derived, then compare the rest."""
    if "version" in payload and "data" in payload:
        ids = ",".join(str(a["id"]) for a in payload["data"]["alerts"])
        event = payload["type"].removeprefix("alert.")
        event = {"triggered": "trigger", "resolved": "resolve"}.get(event, event)
        digest = hashlib.md5(f"{event}:{ids}:{payload['timestamp']}".encode()).hexdigest()
        assert payload["id"] == f"evt_{digest}"
        payload["id"] = "evt_"


def _state(conn: psycopg.Connection, now: datetime) -> dict[str, list[dict[str, Any]]]:
    state: dict[str, list[dict[str, Any]]] = {}
    for table, key in (
        ("alerts", "alert_id"),
        ("delivery_queue", "delivery_id"),
        ("delivery_log", "log_id"),
    ):
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(f"SELECT * FROM alert_delivery.{table} ORDER BY {key}").fetchall()
        for row in rows:
            row.pop("message_id", None)
            if isinstance(row.get("payload"), dict):
                _check_event_ids(row["payload"])
        state[table] = [{k: _normalise(v, now) for k, v in row.items()} for row in rows]
    return state


def _run(url: str, setup: Setup, alerts: list[dict[str, Any]], batch: bool) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        setup(conn)
        conn.commit()
        with conn.transaction():
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            now = row[0]
            conn.execute("SET LOCAL track_functions = 'all'")
            results: list[RaiseResult] = (
                raise_alerts(conn, alerts)
                if batch
                else [raise_alert(conn, **fields) for fields in alerts]
            )
            calls = conn.execute(
                "SELECT pg_stat_get_xact_function_calls("
                "'alert_delivery.raise_alert(jsonb)'::regprocedure)"
            ).fetchone()
            assert calls is not None
        return results, _state(conn, now), calls[0] or 0


def _same(
    urls: tuple[str, str], setup: Setup, alerts: list[dict[str, Any]], *, set_based: bool = True
) -> list[str]:
    batch_results, batch_state, per_alert_calls = _run(urls[0], setup, alerts, batch=True)
    single_results, single_state, _ = _run(urls[1], setup, alerts, batch=False)
    # The set-based path calls raise_alert(jsonb) for none of them, the fallback for each.
    assert per_alert_calls == (0 if set_based else len(alerts))
    assert batch_results == single_results
    for table in ("alerts", "delivery_queue", "delivery_log"):
        assert batch_state[table] == single_state[table], table
    return [r.outcome for r in batch_results]


def _everything(conn: psycopg.Connection) -> None:
    hooks = {
        k: add_webhook(conn, k, k)
        for k in ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox")
    }
    add_webhook(conn, "second-slack", "slack")
    add_webhook(conn, "retired", "slack", active=False)
    conn.execute(
        "INSERT INTO alert_delivery.routing_rules (name, priority, alert_type, target_kinds,"
        " group_window_s, group_by, max_batch, escalate_after_s, repeat_interval_s)"
        " VALUES ('p99', 5, 'P99_DEGRADATION', '{webhook,inbox,pagerduty,email}', 60,"
        " '{alert_type,operation_type}', 3, 120, 600)"
    )
    rule = conn.execute(
        "INSERT INTO alert_delivery.routing_rules (name, priority, operation_type,"
        " group_window_s, escalate_after_s) VALUES ('direct', 7, 'op-2', 0, 60)"
        " RETURNING rule_id"
    ).fetchone()
    assert rule is not None
    conn.execute(
        "INSERT INTO alert_delivery.routing_rule_targets (rule_id, webhook_id) VALUES (%s, %s)",
        (rule[0], hooks["webhook"]),
    )
    conn.execute(
        "INSERT INTO alert_delivery.silences (operation_type, alert_type, starts_at, ends_at,"
        " reason, created_by) VALUES ('muted', 'ALL', now() - interval '1 min',"
        " now() + interval '1 hour', 'test', 'test')"
    )
    conn.commit()
    # Open batches of an earlier transaction, an open CRITICAL that inhibits, and a resolved
    # alert notified within 24 h whose content comes again.
    for i in (1, 4, 6):
        raise_alert(conn, **_alert(i, operation_type="earlier", source="setup"))
    raise_alert(conn, **_alert(0, operation_type="inhibiting"))
    gone = raise_alert(conn, **_alert(2, operation_type="again"))
    conn.execute("SELECT alert_delivery.resolve_alert(%s, 'test')", (gone.alert_id,))


def test_batch_equals_alert_by_alert(twin_urls: tuple[str, str]) -> None:
    alerts = [_alert(i) for i in range(70)]
    alerts += [_alert(i, operation_type=f"earlier-{i}") for i in range(1, 12)]
    alerts += [
        _alert(3, operation_type="inhibiting", severity="WARNING"),
        _alert(5, operation_type="muted"),
        _alert(2, operation_type="again"),
        _alert(7, operation_type="late", severity="WARNING"),
        _alert(8, operation_type="late", severity="CRITICAL"),
        _alert(9, operation_type="late", severity="INFO"),
        _alert(10, title=HOSTILE_TITLE, description=HOSTILE_DESCRIPTION, source=None),
        _alert(
            11,
            operation_type=" padded ",
            severity=" warning ",
            details={"runbook_url": "https://runbooks.example/x", "duration_ms": 12.5},
        ),
    ]
    outcomes = _same(twin_urls, _everything, alerts)
    assert {"notified", "inhibited", "silenced", "suppressed_duplicate_content"} <= set(outcomes)


def _fallback_only(conn: psycopg.Connection) -> None:
    add_webhook(conn, "inbox", "inbox")
    add_webhook(conn, "email", "email")


def test_batch_equals_alert_by_alert_with_fallback_routes(twin_urls: tuple[str, str]) -> None:
    outcomes = _same(twin_urls, _fallback_only, [_alert(i) for i in range(40)])
    assert set(outcomes) == {"notified"}


def test_batch_equals_alert_by_alert_without_webhooks(twin_urls: tuple[str, str]) -> None:
    outcomes = _same(twin_urls, lambda conn: None, [_alert(i) for i in range(12)])
    assert set(outcomes) == {"unrouted"}


def _mixed_batch_sizes(conn: psycopg.Connection) -> None:
    add_webhook(conn, "slack", "slack")
    for name, op, size in (("a", "op-0", 3), ("b", "op-1", 5)):
        conn.execute(
            "INSERT INTO alert_delivery.routing_rules (name, priority, operation_type,"
            " target_kinds, group_window_s, group_by, max_batch)"
            " VALUES (%s, 1, %s, '{slack}', 30, '{source}', %s)",
            (name, op, size),
        )


@pytest.mark.parametrize(
    ("setup", "alerts"),
    [
        # A fingerprint twice in the batch deduplicates against the first.
        (_fallback_only, [_alert(i % 6, operation_type="same") for i in range(14)]),
        # One group filled under two batch sizes.
        (_mixed_batch_sizes, [_alert(i, operation_type=f"op-{i % 2}") for i in range(20)]),
    ],
)
def test_batches_the_set_based_path_leaves_alone(
    twin_urls: tuple[str, str], setup: Setup, alerts: list[dict[str, Any]]
) -> None:
    _same(twin_urls, setup, alerts, set_based=False)


def test_invalid_alert_in_a_batch_names_the_field(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        with pytest.raises(InvalidInput, match="title") as caught:
            raise_alerts(conn, [_alert(0), _alert(1, title="  "), _alert(2, severity="bad")])
        assert caught.value.where == "title"
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM alert_delivery.alerts").fetchone() == (0,)


def test_batch_racing_an_open_fingerprint_deduplicates_into_it(db_url: str) -> None:
    """The fingerprint is opened by another transaction while the batch inserts: the set-based
    path gives way (its subtransaction rolls back) and the per-alert path deduplicates."""
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        _fallback_only(first)
        first.commit()
        mine = raise_alerts(first, [_alert(1), _alert(2)])
        with ThreadPoolExecutor(1) as pool:
            racing = pool.submit(raise_alerts, second, [_alert(1), _alert(3)])
            time.sleep(0.5)  # the second insert now waits for the first transaction
            assert not racing.done()
            first.commit()
            theirs = racing.result(timeout=30)
        second.commit()
        assert [r.outcome for r in mine] == ["notified", "notified"]
        assert theirs[0] == RaiseResult(mine[0].alert_id, "deduplicated")
        assert theirs[1].outcome == "notified"
        row = second.execute(
            "SELECT count(*), sum(occurrences) FROM alert_delivery.alerts"
        ).fetchone()
        assert row == (3, 4)
