"""delivery_log partitioned by UTC day (migration 0013, sql/functions/10_partitions.sql): the
partitions exist ahead, rows land in their day, expired days go whole while newer rows and the
counters stay, and every reader answers the same before and after the upgrade."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import generate_latest

from alert_delivery.config import load_settings
from alert_delivery.db.migrations import (
    _apply_functions,
    default_functions_dir,
    discover_functions,
    upgrade,
)
from alert_delivery.delivery import dlq
from alert_delivery.errors import ConfigurationError
from alert_delivery.exporter import build_registry
from alert_delivery.operations import due, log_partitions, reports
from alert_delivery.operations.status import read_status
from tests.support.operations import Sql, add_delivery, add_health, add_log, add_webhook, samples

PARTITIONED_AT = 13


def today(conn: psycopg.Connection) -> datetime:
    row = conn.execute(b"SELECT date_trunc('day', now() AT TIME ZONE 'UTC')").fetchone()
    assert row is not None
    return datetime(row[0].year, row[0].month, row[0].day, tzinfo=UTC)


def day_name(day: datetime) -> str:
    return "delivery_log_p" + day.strftime("%Y%m%d")


def partition_of(conn: psycopg.Connection, log_id: int) -> str:
    row = conn.execute(
        b"SELECT tableoid::regclass::text FROM alert_delivery.delivery_log WHERE log_id = %s",
        (log_id,),
    ).fetchone()
    assert row is not None
    return str(row[0]).removeprefix("alert_delivery.")


def counters(conn: psycopg.Connection) -> dict[tuple[str, str], tuple[int, int]]:
    rows = conn.execute(
        b"SELECT event, kind, sum(n)::bigint, sum(attempts)::bigint FROM ("
        b" SELECT event, kind, n, attempts FROM alert_delivery.delivery_counters"
        b" UNION ALL SELECT event, kind, n, attempts FROM alert_delivery.delivery_counts) c"
        b" GROUP BY 1, 2"
    ).fetchall()
    return {(e, k): (int(n), int(a)) for e, k, n, a in rows}


def at(day: datetime, hours: int = 12) -> Sql:
    return Sql(f"'{(day + timedelta(hours=hours)).isoformat()}'::timestamptz")


def test_partitions_exist_for_today_and_the_next_seven_days(conn: psycopg.Connection) -> None:
    first = today(conn)
    names = [p.name for p in log_partitions.list_partitions(conn)]
    expected = [day_name(first + timedelta(days=i)) for i in range(8)]
    assert names == ["delivery_log_history", *expected, "delivery_log_default"]
    kind = conn.execute(
        b"SELECT relkind FROM pg_class WHERE oid = 'alert_delivery.delivery_log'::regclass"
    ).fetchone()
    assert kind == ("p",)
    assert not due.log_partitions_due(conn, 30, log_partitions.DAYS_AHEAD)
    assert due.log_partitions_due(conn, 30, log_partitions.DAYS_AHEAD + 1)


def test_rows_land_in_their_day(conn: psycopg.Connection) -> None:
    first = today(conn)
    webhook = add_webhook(conn, "hook")
    assert partition_of(conn, add_log(conn, webhook, "queued")) == day_name(first)
    later = add_log(conn, webhook, "queued", created_at=at(first + timedelta(days=3)))
    assert partition_of(conn, later) == day_name(first + timedelta(days=3))
    past = add_log(conn, webhook, "queued", created_at=at(first - timedelta(days=90)))
    assert partition_of(conn, past) == "delivery_log_history"
    far = add_log(conn, webhook, "queued", created_at=at(first + timedelta(days=400)))
    assert partition_of(conn, far) == "delivery_log_default"


def test_ensure_creates_the_days_ahead_and_moves_rows_out_of_default(
    conn: psycopg.Connection,
) -> None:
    first = today(conn)
    webhook = add_webhook(conn, "hook")
    caught = add_log(conn, webhook, "delivered", latency_ms=3.0, created_at=at(first, 24 * 9))
    assert partition_of(conn, caught) == "delivery_log_default"
    before = counters(conn)

    with conn.transaction():
        created = log_partitions.ensure(conn, ahead=10)
    assert created == [day_name(first + timedelta(days=i)) for i in (8, 9, 10)]
    assert partition_of(conn, caught) == day_name(first + timedelta(days=9))
    assert counters(conn) == before  # moving a row counts nothing again
    with conn.transaction():
        assert log_partitions.ensure(conn, ahead=10) == []
    # The new partitions carry the parent's indexes.
    row = conn.execute(
        b"SELECT count(*) FROM pg_indexes WHERE schemaname = 'alert_delivery' AND tablename = %s",
        (day_name(first + timedelta(days=9)),),
    ).fetchone()
    assert row == (4,)


def test_dropping_expired_days_keeps_newer_rows_and_the_counters(
    conn: psycopg.Connection,
) -> None:
    first = today(conn)
    webhook = add_webhook(conn, "hook")
    with conn.transaction():
        log_partitions.ensure(conn, ahead=20)
    kept, gone = [], []
    for offset in range(21):
        log_id = add_log(
            conn, webhook, "delivered", latency_ms=2.0, created_at=at(first, 24 * offset)
        )
        (kept if offset >= 10 else gone).append(log_id)
    before = counters(conn)
    assert before[("delivered", "webhook")] == (21, 21)

    # A clock 40 days on with 30 days' retention: every day that ended by day 10 expires.
    with conn.transaction():
        dropped = conn.execute(
            b"SELECT * FROM alert_delivery.drop_expired_log_partitions(%s, %s)",
            (timedelta(days=30), first + timedelta(days=40)),
        ).fetchall()
    assert [d[0] for d in dropped] == ["delivery_log_history"] + [
        day_name(first + timedelta(days=i)) for i in range(10)
    ]
    rows = conn.execute(b"SELECT log_id FROM alert_delivery.delivery_log ORDER BY log_id")
    assert [r[0] for r in rows.fetchall()] == kept
    assert counters(conn) == before
    # Inserts through the parent still count.
    add_log(conn, webhook, "delivered", latency_ms=1.0, created_at=at(first, 24 * 15))
    assert counters(conn)[("delivered", "webhook")] == (22, 22)


def test_maintain_drops_nothing_within_retention(db_url: str) -> None:
    changes = log_partitions.maintain(db_url, retention_days=30, ahead=8)
    with psycopg.connect(db_url) as conn:
        first = today(conn)
    assert changes.created == (day_name(first + timedelta(days=8)),)
    assert changes.dropped == ()


def test_retention_below_a_day_is_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute(b"SELECT * FROM alert_delivery.drop_expired_log_partitions('1 hour')")


@pytest.mark.parametrize("value", ["0", "-3", "3651", "7.5", "thirty"])
def test_retention_setting_is_validated(value: str) -> None:
    with pytest.raises(ConfigurationError, match="ALERT_DELIVERY_LOG_RETENTION_DAYS"):
        load_settings({"ALERT_DELIVERY_LOG_RETENTION_DAYS": value})


def test_retention_setting_defaults_to_30_days() -> None:
    assert load_settings({}).log_retention_days == 30
    assert load_settings({"ALERT_DELIVERY_LOG_RETENTION_DAYS": "7"}).log_retention_days == 7


def _readers(url: str, now: datetime) -> dict[str, Any]:
    """What every reader of delivery_log answers: views, exporter, report, status, DLQ."""
    with psycopg.connect(url, autocommit=True) as conn:
        out: dict[str, Any] = {}
        for name, order in (("alert_suppressions", "log_id"), ("v_webhook_performance", "1")):
            out[name] = conn.execute(
                f"SELECT * FROM alert_delivery.{name} ORDER BY {order}".encode()
            ).fetchall()
        out["report"] = reports.delivery_report(conn, now - timedelta(days=2), now)
        status = read_status(conn)
        # Ages move on between the two reads; the counts must not.
        out["status"] = ([(q.status, q.depth) for q in status.queue], status.degraded)
    exposition = generate_latest(build_registry(url, settle_s=0)).decode()
    out["exporter"] = {
        k: v
        for k, v in samples(exposition).items()
        if k[0].startswith("alert_delivery_") and "scrape" not in k[0]
    }
    out["dlq"] = [(d.delivery_id, d.webhook) for d in dlq.list_dead(url)]
    return out


def test_readers_answer_the_same_before_and_after_partitioning(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        upgrade(conn, target=PARTITIONED_AT - 1)
        # The function files of head on the 0012 schema (with the counting trigger on the old
        # table), as a database upgraded from 0012 had them.
        _apply_functions(conn, discover_functions(default_functions_dir(None)))
        hook = add_webhook(conn, "hook-a")
        other = add_webhook(conn, "hook-b", kind="slack")
        add_health(conn, other, status="degraded", consecutive_failures=3)
        dead = add_delivery(conn, hook, status="dead", dead_at=Sql("now()"), attempts=8)
        for i in range(30):
            ago = Sql(f"now() - interval '{i * 47} minutes'")
            add_log(conn, hook, "delivered", latency_ms=float(i), created_at=ago)
            add_log(conn, other, "retry_scheduled", latency_ms=100.0 + i, created_at=ago)
        add_log(conn, hook, "dead_lettered", delivery_id=dead, latency_ms=9.0)
        add_log(conn, None, "suppressed_silence", detail="silenced")
        add_log(conn, None, "queued", created_at=Sql("now() - interval '40 days'"))
        rows_before = conn.execute(
            b"SELECT * FROM alert_delivery.delivery_log ORDER BY log_id"
        ).fetchall()
    now = datetime.now(UTC)
    before = _readers(empty_db_url, now)
    assert before["alert_suppressions"] and before["dlq"] and before["report"].webhooks

    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        upgrade(conn)
        rows_after = conn.execute(
            b"SELECT * FROM alert_delivery.delivery_log ORDER BY log_id"
        ).fetchall()
    assert rows_after == rows_before
    after = _readers(empty_db_url, now)
    for reader in ("alert_suppressions", "v_webhook_performance", "report", "status", "dlq"):
        assert after[reader] == before[reader], reader
    assert after["exporter"] == before["exporter"]

    # New rows continue the old identity, and the re-attached trigger counts them.
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        new_id = add_log(conn, hook, "queued")
    assert new_id > rows_before[-1][0]
    queued = (
        "alert_delivery_delivery_events_total",
        frozenset({("kind", "webhook"), ("event", "queued")}),
    )
    assert _readers(empty_db_url, now)["exporter"][queued] == before["exporter"].get(queued, 0) + 1

    # The DLQ replays across partitions: the replayed row lands in today's partition.
    assert dlq.replay(empty_db_url, dlq.Selection(ids=[dead])) == 1
    with psycopg.connect(empty_db_url) as conn:
        row = conn.execute(
            b"SELECT tableoid::regclass::text FROM alert_delivery.delivery_log"
            b" WHERE delivery_id = %s AND event = 'replayed'",
            (dead,),
        ).fetchone()
        assert row == (f"alert_delivery.{day_name(today(conn))}",)
