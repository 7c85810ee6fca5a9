"""Delivery counters (migration 0012, sql/functions/09_counters.sql) on a real PostgreSQL:
counted per statement by trigger, folded without loss, never lowered by deleting log rows or
dropping partitions, and served by the exporter as ``_total`` counters."""

from collections.abc import Iterator

import psycopg
import pytest

from alert_delivery.config import Settings
from alert_delivery.db.migrations import upgrade
from alert_delivery.delivery.engine import deliver_batch
from alert_delivery.delivery.registry import add_webhook as register_webhook
from alert_delivery.exporter import serve
from tests.support.delivery import FAST, delivery_env, enqueue, make_due
from tests.support.operations import add_log, add_webhook, free_port, key, samples, scrape
from tests.support.receivers import Receiver, Reply, sequence
from tests.support.receivers import serve as serve_receiver

__all__ = ["delivery_env"]

Totals = dict[tuple[str, str], tuple[int, int]]


def totals(conn: psycopg.Connection) -> Totals:
    """(event, kind) -> (n, attempts), folded and unfolded together, as the exporter reads."""
    rows = conn.execute(
        "SELECT event, kind, sum(n)::bigint, sum(attempts)::bigint FROM ("
        " SELECT event, kind, n, attempts FROM alert_delivery.delivery_counters UNION ALL"
        " SELECT event, kind, n, attempts FROM alert_delivery.delivery_counts) c"
        " GROUP BY 1, 2"
    ).fetchall()
    return {(e, k): (int(n), int(a)) for e, k, n, a in rows}


def unfolded(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM alert_delivery.delivery_counts").fetchone()
    return int(row[0]) if row else -1


def log_many(conn: psycopg.Connection, webhook_id: int | None, event: str, n: int) -> None:
    """n log rows in ONE statement, as the engine logs a batch."""
    conn.execute(
        "INSERT INTO alert_delivery.delivery_log (webhook_id, event, latency_ms)"
        " SELECT %s, %s, 12.5 FROM generate_series(1, %s)",
        (webhook_id, event, n),
    )


def fold(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT alert_delivery.fold_delivery_counts()").fetchone()
    return int(row[0]) if row else -1


def test_one_increment_row_per_statement_event_and_kind(conn: psycopg.Connection) -> None:
    slack = add_webhook(conn, "s", "slack")
    pager = add_webhook(conn, "p", "pagerduty")
    conn.execute(
        "INSERT INTO alert_delivery.delivery_log (webhook_id, event, latency_ms)"
        " SELECT CASE WHEN g %% 2 = 0 THEN %s ELSE %s END,"
        "        CASE WHEN g %% 5 = 0 THEN 'retry_scheduled' ELSE 'delivered' END, 3.0"
        " FROM generate_series(1, 50) g",
        (slack, pager),
    )
    assert unfolded(conn) == 4  # 50 rows, one statement: 2 events x 2 kinds
    assert totals(conn) == {
        ("delivered", "slack"): (20, 20),
        ("delivered", "pagerduty"): (20, 20),
        ("retry_scheduled", "slack"): (5, 5),
        ("retry_scheduled", "pagerduty"): (5, 5),
    }


def test_attempts_are_attempt_events_with_a_latency(conn: psycopg.Connection) -> None:
    hook = add_webhook(conn, "h")
    add_log(conn, hook, "delivered", latency_ms=5.0)
    add_log(conn, hook, "dead_lettered")  # dead-lettered by hand or by a 410: no attempt
    add_log(conn, hook, "dead_lettered", latency_ms=50.0)  # retries exhausted: an attempt
    add_log(conn, hook, "queued", latency_ms=1.0)  # bookkeeping, whatever its latency
    add_log(conn, None, "suppressed_silenced")
    gone = add_webhook(conn, "gone")
    conn.execute("DELETE FROM alert_delivery.webhooks WHERE webhook_id = %s", (gone,))
    add_log(conn, gone, "delivered", latency_ms=2.0)
    assert totals(conn) == {
        ("delivered", "webhook"): (1, 1),
        ("dead_lettered", "webhook"): (2, 1),
        ("queued", "webhook"): (1, 0),
        ("suppressed_silenced", "none"): (1, 0),
        ("delivered", "unknown"): (1, 1),
    }


def test_counters_survive_deleting_and_truncating_the_log(conn: psycopg.Connection) -> None:
    hook = add_webhook(conn, "h", "slack")
    log_many(conn, hook, "delivered", 30)
    before = totals(conn)
    conn.execute("DELETE FROM alert_delivery.delivery_log")
    assert totals(conn) == before
    fold(conn)
    conn.execute("TRUNCATE alert_delivery.delivery_log")
    log_many(conn, hook, "delivered", 2)
    assert totals(conn) == {("delivered", "slack"): (32, 32)}


def test_fold_moves_everything_and_changes_no_total(conn: psycopg.Connection) -> None:
    hook = add_webhook(conn, "h")
    for _ in range(5):
        log_many(conn, hook, "delivered", 3)
    log_many(conn, None, "suppressed_duplicate", 2)
    before = totals(conn)
    assert fold(conn) == 6
    assert unfolded(conn) == 0
    assert totals(conn) == before
    assert fold(conn) == 0
    log_many(conn, hook, "delivered", 1)
    assert fold(conn) == 1
    assert totals(conn)[("delivered", "webhook")] == (16, 16)


def test_a_fold_never_waits_for_another(db_url: str, conn: psycopg.Connection) -> None:
    hook = add_webhook(conn, "h")
    log_many(conn, hook, "delivered", 3)
    with psycopg.connect(db_url) as other:
        other.execute("SET lock_timeout = '2s'")
        first = other.execute("SELECT alert_delivery.fold_delivery_counts()").fetchone()
        assert first == (1,)
        # `other` still holds the fold lock (its transaction is open): this fold skips at once.
        log_many(conn, hook, "delivered", 1)
        assert fold(conn) == 0
        other.rollback()
    assert fold(conn) == 2
    assert totals(conn) == {("delivered", "webhook"): (4, 4)}


def test_an_uncommitted_increment_is_folded_after_its_commit(
    db_url: str, conn: psycopg.Connection
) -> None:
    hook = add_webhook(conn, "h")
    with psycopg.connect(db_url) as writer:
        log_many(writer, hook, "delivered", 7)  # not committed yet
        assert fold(conn) == 0
        assert totals(conn) == {}
        writer.commit()
    assert totals(conn) == {("delivered", "webhook"): (7, 7)}
    assert fold(conn) == 1


def test_every_thousandth_statement_folds_by_itself(conn: psycopg.Connection) -> None:
    hook = add_webhook(conn, "h")
    conn.execute("SELECT setval('alert_delivery.delivery_counts_statements', 997)")
    log_many(conn, hook, "delivered", 2)  # statement 998
    log_many(conn, hook, "delivered", 2)  # 999
    assert unfolded(conn) == 2
    log_many(conn, hook, "delivered", 2)  # 1000: folds, its own increment included
    assert unfolded(conn) == 0
    conn.execute("INSERT INTO alert_delivery.delivery_log (event) SELECT 'x' WHERE false")
    log_many(conn, hook, "delivered", 2)  # an empty statement does not count: 1001
    assert unfolded(conn) == 1
    assert totals(conn) == {("delivered", "webhook"): (8, 8)}


def test_breaker_transitions_are_counted_once_each(conn: psycopg.Connection) -> None:
    hook = add_webhook(conn, "h", "mattermost")

    def breaker(state: str) -> None:
        conn.execute(
            "UPDATE alert_delivery.webhook_health SET breaker_state = %s,"
            " consecutive_failures = consecutive_failures + 1 WHERE webhook_id = %s",
            (state, hook),
        )

    for state in ("closed", "open", "open", "half_open", "open", "half_open", "closed"):
        breaker(state)
    conn.execute("UPDATE alert_delivery.webhook_health SET total = total + 1")
    assert totals(conn) == {
        ("breaker_open", "mattermost"): (2, 0),
        ("breaker_half_open", "mattermost"): (2, 0),
        ("breaker_closed", "mattermost"): (1, 0),
    }


def test_the_trigger_counts_a_partitioned_log_and_survives_a_dropped_partition(
    conn: psycopg.Connection,
) -> None:
    """What issue 14 will do to delivery_log, on a scratch table with the same trigger."""
    hook = add_webhook(conn, "h", "email")
    conn.execute(
        "CREATE TABLE alert_delivery.log_parts (webhook_id bigint, event text NOT NULL,"
        " latency_ms float8, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at)"
    )
    conn.execute(
        "CREATE TABLE alert_delivery.log_parts_old PARTITION OF alert_delivery.log_parts"
        " FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')"
    )
    conn.execute(
        "CREATE TABLE alert_delivery.log_parts_new PARTITION OF alert_delivery.log_parts"
        " FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')"
    )
    conn.execute(
        "CREATE TRIGGER log_parts_count AFTER INSERT ON alert_delivery.log_parts"
        " REFERENCING NEW TABLE AS logged FOR EACH STATEMENT"
        " EXECUTE FUNCTION alert_delivery.delivery_log_count()"
    )
    conn.execute(
        "INSERT INTO alert_delivery.log_parts (webhook_id, event, latency_ms, created_at)"
        " SELECT %s, 'delivered', 9.0, timestamptz '2026-01-20' + g * interval '1 day'"
        " FROM generate_series(1, 20) g",
        (hook,),
    )
    assert totals(conn) == {("delivered", "email"): (20, 20)}
    conn.execute("DROP TABLE alert_delivery.log_parts_old")
    conn.execute(
        "ALTER TABLE alert_delivery.log_parts DETACH PARTITION alert_delivery.log_parts_new"
    )
    assert totals(conn) == {("delivered", "email"): (20, 20)}


def test_an_upgraded_database_starts_from_the_log_it_holds(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        upgrade(conn, target=9)
        slack = add_webhook(conn, "s", "slack")
        log_many(conn, slack, "delivered", 4)
        add_log(conn, slack, "dead_lettered")
        add_log(conn, None, "suppressed_no_route")
        upgrade(conn)
        assert totals(conn) == {
            ("delivered", "slack"): (4, 4),
            ("dead_lettered", "slack"): (1, 0),
            ("suppressed_no_route", "none"): (1, 0),
        }
        log_many(conn, slack, "delivered", 1)  # and the trigger counts from there on
        assert totals(conn)[("delivered", "slack")] == (5, 5)


def test_the_engine_is_counted_outcome_by_outcome(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve_receiver(Receiver(sequence(Reply(503), Reply(200), Reply(200)))) as rx:
        hook = register_webhook(
            db_url,
            name="h",
            kind="webhook",
            url=rx.url,
            settings=delivery_env,
            retry_schedule_s=[1],
        ).webhook_id
        enqueue(conn, hook, [{"n": 1}, {"n": 2}])
        first = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        make_due(conn)
        second = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
    assert (first.delivered + second.delivered, first.retrying + second.retrying) == (2, 1)
    got = totals(conn)
    assert got[("delivered", "webhook")] == (2, 2)
    assert got[("retry_scheduled", "webhook")] == (1, 1)


@pytest.fixture
def exporter_port(db_url: str) -> Iterator[int]:
    port = free_port()
    server, thread = serve(db_url, "127.0.0.1", port, settle_s=0)
    yield port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_exporter_serves_the_counters(conn: psycopg.Connection, exporter_port: int) -> None:
    slack = add_webhook(conn, "ops-slack", "slack")
    pager = add_webhook(conn, "pager", "pagerduty")
    log_many(conn, slack, "delivered", 5)
    log_many(conn, slack, "retry_scheduled", 2)
    add_log(conn, slack, "dead_lettered", latency_ms=30.0)
    add_log(conn, slack, "dead_lettered")
    add_log(conn, None, "suppressed_silenced")
    add_log(conn, None, "suppressed_duplicate")
    add_log(conn, None, "suppressed_duplicate")
    conn.execute(
        "UPDATE alert_delivery.webhook_health SET breaker_state = 'open' WHERE webhook_id = %s",
        (slack,),
    )
    text = scrape(exporter_port)
    got = samples(text)
    assert "# TYPE alert_delivery_delivery_events_total counter" in text
    ev = "alert_delivery_delivery_events_total"
    assert got[key(ev, event="delivered", kind="slack")] == 5
    assert got[key(ev, event="retry_scheduled", kind="slack")] == 2
    assert got[key(ev, event="dead_lettered", kind="slack")] == 2
    assert got[key(ev, event="suppressed_duplicate", kind="none")] == 2
    # Zeros for what has not happened yet, per kind in use: rate() sees the first event.
    assert got[key(ev, event="delivered", kind="pagerduty")] == 0
    at = "alert_delivery_attempts_total"
    assert got[key(at, outcome="delivered", kind="slack")] == 5
    assert got[key(at, outcome="retry_scheduled", kind="slack")] == 2
    assert got[key(at, outcome="dead_lettered", kind="slack")] == 1
    assert got[key(at, outcome="delivered", kind="pagerduty")] == 0
    assert got[key("alert_delivery_retries_total", kind="slack")] == 2
    assert got[key("alert_delivery_dead_lettered_total", kind="slack")] == 2
    assert got[key("alert_delivery_dead_lettered_total", kind="pagerduty")] == 0
    s = "alert_delivery_suppressions_total"
    assert got[key(s, reason="duplicate")] == 2
    assert got[key(s, reason="silenced")] == 1
    assert got[key(s, reason="inhibited")] == 0
    b = "alert_delivery_breaker_transitions_total"
    assert got[key(b, kind="slack", state="open")] == 1
    assert got[key(b, kind="pagerduty", state="open")] == 0
    assert not [k for k in got if k[0] == ev and dict(k[1])["event"].startswith("breaker_")]
    assert pager  # a webhook with no events still gets its zero series

    # The scrape folded the increments; deleting every log row changes no counter.
    assert unfolded(conn) == 0
    conn.execute("DELETE FROM alert_delivery.delivery_log")
    again = samples(scrape(exporter_port))
    counters = {k: v for k, v in got.items() if k[0].endswith("_total")}
    assert {k: again[k] for k in counters} == counters


def test_exporter_reads_counters_over_a_read_only_connection(
    db_url: str, conn: psycopg.Connection
) -> None:
    hook = add_webhook(conn, "h")
    log_many(conn, hook, "delivered", 3)
    # As on a replica or for a read-only role: every new session's transactions are read-only
    # (this test's own connection was opened before and stays writable).
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    conn.execute(f'ALTER DATABASE "{row[0]}" SET default_transaction_read_only = on'.encode())
    port = free_port()
    server, thread = serve(db_url, "127.0.0.1", port, settle_s=0)
    try:
        got = samples(scrape(port))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert got[key("alert_delivery_database_up")] == 1
    assert got[key("alert_delivery_delivery_events_total", event="delivered", kind="webhook")] == 3
    assert unfolded(conn) == 1  # nothing folded: the counters read the same
