"""raise_alerts is raise_alert over a batch: one path, the same rows either way.

Two fresh databases get the same setup; one raises the batch with ``raise_alerts``, the other
calls ``raise_alert`` for each alert inside one transaction. Outcomes, alerts, queue rows (by
content: the batch writes its rows in a different order) and log rows must be equal.
"""

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from alert_delivery.alerting import RaiseResult, add_rule, add_silence, raise_alert, raise_alerts
from alert_delivery.db.connection import with_dbname
from alert_delivery.errors import InvalidInput
from tests.support.alerting import HOSTILE_DESCRIPTION, HOSTILE_TITLE, add_webhook
from tests.support.waiting import wait_for

Setup = Callable[[psycopg.Connection], None]


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
        return json.dumps(value, sort_keys=True)
    return value


def _state(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        alerts = cur.execute("SELECT * FROM alert_delivery.alerts ORDER BY alert_id").fetchall()
        queue = cur.execute("SELECT * FROM alert_delivery.delivery_queue").fetchall()
        log = cur.execute("SELECT * FROM alert_delivery.delivery_log").fetchall()
    for row in queue:
        row.pop("message_id")
        row.pop("delivery_id")
    for row in log:
        row.pop("log_id")
        row.pop("delivery_id")
    return {
        "alerts": [{k: _normalise(v, now) for k, v in r.items()} for r in alerts],
        "queue": sorted(json.dumps({k: _normalise(v, now) for k, v in r.items()}) for r in queue),
        "log": Counter(json.dumps({k: _normalise(v, now) for k, v in r.items()}) for r in log),
    }


def _run(url: str, setup: Setup, alerts: list[dict[str, Any]], batch: bool) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        setup(conn)
        conn.commit()
        with conn.transaction():
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            results: list[RaiseResult] = (
                raise_alerts(conn, alerts)
                if batch
                else [raise_alert(conn, **fields) for fields in alerts]
            )
        return results, _state(conn, row[0])


def _same(urls: tuple[str, str], setup: Setup, alerts: list[dict[str, Any]]) -> list[str]:
    batch_results, batch_state = _run(urls[0], setup, alerts, batch=True)
    single_results, single_state = _run(urls[1], setup, alerts, batch=False)
    assert batch_results == single_results
    for table in ("alerts", "queue", "log"):
        assert batch_state[table] == single_state[table], table
    return [r.outcome for r in batch_results]


def _everything(conn: psycopg.Connection) -> None:
    for k in ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox"):
        add_webhook(conn, k, k)
    add_webhook(conn, "second-slack", "slack")
    add_webhook(conn, "retired", "slack", active=False)
    add_rule(
        conn,
        "p99",
        priority=5,
        match=["alert_type=P99_DEGRADATION"],
        kinds=["webhook", "inbox", "pagerduty", "email"],
        group_wait_s=60,
        group_by=["alert_type", "operation_type"],
        max_batch=3,
        escalate_after_s=120,
        repeat_interval_s=600,
        continues=True,
    )
    add_rule(
        conn,
        "direct",
        priority=7,
        match=["operation_type=op-2"],
        webhooks=["webhook"],
        group_wait_s=0,
        escalate_after_s=60,
    )
    add_silence(conn, match=["operation_type=muted"], reason="test", minutes=60)
    conn.commit()
    # Open batches of an earlier transaction and an open CRITICAL that inhibits.
    for i in (1, 4, 6):
        raise_alert(conn, **_alert(i, operation_type="earlier", source="setup"))
    raise_alert(conn, **_alert(0, operation_type="inhibiting"))
    # The same content from another source, notified: a content duplicate.
    raise_alert(conn, **_alert(2, operation_type="again", source="elsewhere"))


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
        _alert(4),  # the same labels again: a duplicate of the first
    ]
    outcomes = _same(twin_urls, _everything, alerts)
    assert {
        "notified",
        "inhibited",
        "silenced",
        "suppressed_duplicate_content",
        "deduplicated",
    } <= set(outcomes)


def _fallback_only(conn: psycopg.Connection) -> None:
    add_webhook(conn, "inbox", "inbox")
    add_webhook(conn, "email", "email")


def test_batch_equals_alert_by_alert_with_fallback_routes(twin_urls: tuple[str, str]) -> None:
    outcomes = _same(twin_urls, _fallback_only, [_alert(i) for i in range(40)])
    assert set(outcomes) == {"notified"}


def test_batch_equals_alert_by_alert_without_webhooks(twin_urls: tuple[str, str]) -> None:
    outcomes = _same(twin_urls, lambda conn: None, [_alert(i) for i in range(12)])
    assert set(outcomes) == {"unrouted"}


def test_a_fingerprint_twice_in_a_batch_deduplicates_into_the_first(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        _fallback_only(conn)
        alerts = [_alert(i % 3, operation_type="same", severity="INFO") for i in range(7)]
        results = raise_alerts(conn, alerts)
        assert [r.outcome for r in results[:3]] == ["notified"] * 3
        assert {r.outcome for r in results[3:]} == {"deduplicated"}
        assert {r.alert_id for r in results} == {r.alert_id for r in results[:3]}
        row = conn.execute("SELECT sum(occurrences) FROM alert_delivery.alerts").fetchone()
        assert row == (7,)


def test_invalid_alert_in_a_batch_names_the_field(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        with pytest.raises(InvalidInput, match="title") as caught:
            raise_alerts(conn, [_alert(0), _alert(1, title="  "), _alert(2, severity="bad")])
        assert caught.value.where == "alerts[1].title"
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM alert_delivery.alerts").fetchone() == (0,)


def test_batch_racing_an_open_fingerprint_deduplicates_into_it(db_url: str) -> None:
    """Another transaction raises the same labels while the batch is uncommitted: it waits on
    the fingerprint and then deduplicates into the alert the first one opened."""
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        _fallback_only(first)
        first.commit()
        mine = raise_alerts(first, [_alert(1), _alert(2)])
        with ThreadPoolExecutor(1) as pool:
            racing = pool.submit(raise_alerts, second, [_alert(1), _alert(3)])
            with psycopg.connect(db_url, autocommit=True) as watch:
                wait_for(
                    lambda: (
                        watch.execute(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND NOT granted"
                        ).fetchone()
                        == (1,)
                    ),
                    "the second producer waits on the fingerprint",
                )
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
