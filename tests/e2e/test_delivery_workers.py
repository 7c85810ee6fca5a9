"""Worker processes on one queue: three workers and a Dagster run, SIGTERM, heartbeats."""

import collections
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from alert_delivery.config import Settings
from alert_delivery.defs.delivery import WebhookSenderResource, deliver_pending
from alert_delivery.defs.resources import PostgresResource
from alert_delivery.delivery.registry import add_webhook
from tests.support.delivery import delivery_env, enqueue, queue_rows
from tests.support.receivers import Receiver, always, serve
from tests.support.workers import start_worker

__all__ = ["delivery_env"]


def wait_until(predicate: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def _live(conn: psycopg.Connection, n: int) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM alert_delivery.workers WHERE stopped_at IS NULL"
    ).fetchone()
    return row is not None and row[0] >= n


def test_three_workers_and_a_dagster_run_send_nothing_twice(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    workers: list[subprocess.Popen[str]],
) -> None:
    with serve(Receiver(always(200, delay_s=0.002))) as rx:
        hooks = [
            add_webhook(
                db_url,
                name=f"w{i}",
                kind="webhook",
                url=f"{rx.url}{i}",
                settings=delivery_env,
                rate_limit_per_s=1000.0,
            ).webhook_id
            for i in range(3)
        ]
        # Workers poll rarely here, so rows enqueued without NOTIFY are the Dagster run's.
        workers.extend(start_worker(f"worker-{i}", "--poll-interval", "5") for i in range(3))
        wait_until(lambda: _live(conn, 3))
        ids: list[int] = []
        for round_ in range(6):
            for hook in hooks:
                ids += enqueue(conn, hook, [{"r": round_, "i": i} for i in range(15)], notify=True)
            if round_ == 2:
                so_far = len(ids)
                wait_until(lambda: len(rx.requests) >= so_far)  # noqa: B023
                for hook in hooks:
                    ids += enqueue(conn, hook, [{"quiet": i} for i in range(10)], notify=False)
                result = deliver_pending.execute_in_process(
                    resources={
                        "postgres": PostgresResource(database_url=db_url),
                        "webhook_sender": WebhookSenderResource(),
                    }
                )
                assert result.success
                ran = result.output_for_node("deliver_due_rows")
        wait_until(lambda: len(rx.requests) >= len(ids))
        time.sleep(0.3)
        seen = collections.Counter(rx.ids())
    assert len(ids) == 300
    assert ran["delivered"] > 0, "the Dagster run took part"
    assert sum(seen.values()) == 300 and max(seen.values()) == 1, "no delivery sent twice"
    assert {r["status"] for r in queue_rows(conn).values()} == {"delivered"}
    by = dict(
        conn.execute(
            "SELECT worker_id, count(*) FROM alert_delivery.delivery_log"
            " WHERE event = 'delivered' GROUP BY 1"
        ).fetchall()
    )
    assert sum(by.values()) == 300
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
    stopped = conn.execute(
        "SELECT count(*) FROM alert_delivery.workers WHERE stopped_at IS NOT NULL"
    ).fetchone()
    assert stopped == (3,)


def test_sigterm_finishes_in_flight_attempts_and_releases_the_rest(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    workers: list[subprocess.Popen[str]],
) -> None:
    with serve(Receiver(always(200, delay_s=1.0))) as rx:
        hook = add_webhook(
            db_url,
            name="slow",
            kind="webhook",
            url=rx.url,
            settings=delivery_env,
            rate_limit_per_s=1000.0,
        )
        workers.append(start_worker("graceful", "--concurrency", "2"))
        wait_until(lambda: _live(conn, 1))
        enqueue(conn, hook.webhook_id, [{"i": i} for i in range(10)], notify=True)
        rx.wait_for(2)
        workers[0].send_signal(signal.SIGTERM)
        assert workers[0].wait(20) == 0
        assert len(rx.requests) == 2
    rows = list(queue_rows(conn).values())
    assert sorted(r["status"] for r in rows) == ["delivered"] * 2 + ["pending"] * 8
    assert all(r["attempts"] == 0 for r in rows if r["status"] == "pending")
    released = conn.execute(
        "SELECT count(*) FROM alert_delivery.delivery_log WHERE event = 'released'"
    ).fetchone()
    assert released == (8,)


def test_processes_share_the_queue_under_one_parent_that_restarts_and_stops_them(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    workers: list[subprocess.Popen[str]],
) -> None:
    """`worker --processes 2`: two children (ids pool-0, pool-1) deliver each row once; a child
    that dies is started again; SIGTERM to the parent stops both cleanly."""
    with serve(Receiver(always(200, delay_s=0.002))) as rx:
        hook = add_webhook(
            db_url,
            name="pool",
            kind="webhook",
            url=rx.url,
            settings=delivery_env,
            rate_limit_per_s=1000.0,
        ).webhook_id
        workers.append(start_worker("pool", "--processes", "2"))
        wait_until(lambda: _live(conn, 2))
        ids = enqueue(conn, hook, [{"i": i} for i in range(100)], notify=True)
        wait_until(lambda: len(rx.requests) >= len(ids))
        row = conn.execute(
            "SELECT pid, now() FROM alert_delivery.workers WHERE worker_id = 'pool-0'"
        ).fetchone()
        assert row is not None
        os.kill(row[0], signal.SIGKILL)

        def restarted() -> bool:
            beat = conn.execute(
                "SELECT heartbeat_at > %s FROM alert_delivery.workers WHERE worker_id = 'pool-0'",
                (row[1],),
            ).fetchone()
            return beat is not None and bool(beat[0])

        wait_until(restarted, 20)
        ids += enqueue(conn, hook, [{"j": i} for i in range(50)], notify=True)
        wait_until(lambda: len(rx.requests) >= len(ids))
        seen = collections.Counter(rx.ids())
    assert sum(seen.values()) == 150 and max(seen.values()) == 1
    workers[0].send_signal(signal.SIGTERM)
    assert workers[0].wait(30) == 0, workers[0].stderr.read() if workers[0].stderr else ""
    names = {
        r[0]
        for r in conn.execute(
            "SELECT worker_id FROM alert_delivery.workers WHERE stopped_at IS NOT NULL"
        ).fetchall()
    }
    assert names == {"pool-0", "pool-1"}


def test_a_killed_parent_takes_its_worker_processes_with_it(
    conn: psycopg.Connection, delivery_env: Settings, workers: list[subprocess.Popen[str]]
) -> None:
    """The children get SIGTERM when the parent dies, even by SIGKILL: they stop cleanly."""
    workers.append(start_worker("orphan", "--processes", "2"))
    wait_until(lambda: _live(conn, 2))
    workers[0].kill()
    workers[0].wait(10)

    def both_stopped() -> bool:
        row = conn.execute(
            "SELECT count(*) FROM alert_delivery.workers WHERE stopped_at IS NOT NULL"
        ).fetchone()
        return row == (2,)

    wait_until(both_stopped)
