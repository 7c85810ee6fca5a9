"""Chaos: worker processes against real receivers on 127.0.0.1, with faults injected.

Each case is bounded (every wait has a deadline, well under 60 s), stops what it starts by pid,
and prints its numbers (sent, delivered, duplicates, lost, time to recover). The PostgreSQL
restart is tests/e2e/test_worker_reconnect.py; three workers and a Dagster run on one queue is
tests/e2e/test_delivery_workers.py.
"""

import collections
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from alert_delivery.config import Settings
from alert_delivery.delivery.engine import GROUP_ROWS
from alert_delivery.delivery.registry import add_webhook
from tests.support.delivery import delivery_env, enqueue, queue_rows
from tests.support.receivers import Received, Receiver, Reply, always, serve
from tests.support.workers import start_worker

__all__ = ["delivery_env"]
FAST_RATE = 100_000.0


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout_s} s: {what}")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(10)


def live(conn: psycopg.Connection, worker_id: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM alert_delivery.workers WHERE worker_id = %s AND stopped_at IS NULL",
        (worker_id,),
    ).fetchone()
    return row is not None and row[0] > 0


def delivered(conn: psycopg.Connection, webhook_id: int | None = None) -> int:
    row = conn.execute(
        "SELECT count(*) FROM alert_delivery.delivery_queue WHERE status = 'delivered'"
        " AND (%s::bigint IS NULL OR webhook_id = %s)",
        (webhook_id, webhook_id),
    ).fetchone()
    return int(row[0]) if row else 0


def hook(db_url: str, settings: Settings, name: str, url: str, **kw: object) -> int:
    kw.setdefault("rate_limit_per_s", FAST_RATE)
    return add_webhook(
        db_url,
        name=name,
        kind="webhook",
        url=url,
        settings=settings,
        **kw,  # type: ignore[arg-type]
    ).webhook_id


def test_kill_9_mid_drain_loses_nothing_and_re_sends_only_rows_in_flight(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    procs: list[subprocess.Popen[str]],
) -> None:
    lanes, rows = 10, 600
    with serve(Receiver(always(200, delay_s=0.02))) as rx:
        webhook_id = hook(db_url, delivery_env, "victim", rx.url)
        procs.append(
            start_worker("doomed", "--concurrency", str(lanes), "--lease", "2", capture=False)
        )
        wait_until(lambda: live(conn, "doomed"), 20, "worker up")
        ids = enqueue(conn, webhook_id, [{"i": i} for i in range(rows)], notify=True)
        wait_until(lambda: len(rx.requests) >= 150, 30, "drain under way")
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(10)
        killed_at = time.monotonic()
        # What the dead worker held without an outcome: the only rows that may go twice.
        held = {
            str(r[0])
            for r in conn.execute(
                "SELECT message_id FROM alert_delivery.delivery_queue"
                " WHERE status = 'in_flight' AND leased_by = 'doomed'"
            ).fetchall()
        }
        sent_before = len(rx.requests)
        procs.append(
            start_worker("heir", "--concurrency", str(lanes), "--lease", "2", capture=False)
        )
        recovered = wait_until(lambda: delivered(conn) == rows, 45, "every row delivered")
        time.sleep(0.2)  # nothing more may arrive: a late duplicate would show here
        seen = collections.Counter(rx.ids())
    dupes = {m for m, n in seen.items() if n > 1}
    in_flight_window = lanes + GROUP_ROWS  # on the wire, or answered and waiting for its group
    assert set(seen) == {r["message_id"] for r in queue_rows(conn).values()}, "lost rows"
    assert dupes <= held, "only rows the dead worker held can be re-sent"
    assert len(dupes) <= in_flight_window, len(dupes)
    assert max(seen.values()) <= 2
    # Every re-send is visible: the next outcome says an earlier claim ended without one.
    marked = conn.execute(
        "SELECT count(*) FROM alert_delivery.delivery_log WHERE event = 'delivered'"
        " AND detail LIKE '%%ended without an outcome%%'"
    ).fetchone()
    assert marked is not None and marked[0] >= len(dupes)
    print(
        f"\nkill -9: sent {sum(seen.values())} ({sent_before} before the kill), delivered "
        f"{len(ids)}, duplicates {len(dupes)} (of {len(held)} held), lost 0, all delivered "
        f"{recovered:.1f} s after the kill ({time.monotonic() - killed_at:.1f} s incl. check)"
    )


class Switch:
    """A receiver that is down (503) until switched back on; counts requests per phase."""

    def __init__(self) -> None:
        self.down = True
        self.lock = threading.Lock()
        self.while_down: list[float] = []

    def __call__(self, _n: int, got: Received) -> Reply:
        with self.lock:
            if self.down:
                self.while_down.append(got.at)
                return Reply(503)
        return Reply(200)


def test_receiver_down_then_back_opens_the_breaker_after_5_probes_then_delivers_all(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    procs: list[subprocess.Popen[str]],
) -> None:
    switch, rows, cooldown = Switch(), 300, 2.0
    with serve(Receiver(switch)) as rx:
        webhook_id = hook(db_url, delivery_env, "outage", rx.url, retry_schedule_s=[1] * 20)
        procs.append(
            start_worker(
                "patient", "--concurrency", "1", "--breaker-cooldown", str(cooldown), capture=False
            )
        )
        wait_until(lambda: live(conn, "patient"), 20, "worker up")
        enqueue(conn, webhook_id, [{"i": i} for i in range(rows)], notify=True)

        def state() -> str:
            row = conn.execute(
                "SELECT breaker_state FROM alert_delivery.webhook_health WHERE webhook_id = %s",
                (webhook_id,),
            ).fetchone()
            return str(row[0]) if row else ""

        wait_until(lambda: state() == "open", 20, "breaker opens")
        assert len(switch.while_down) == 5, "the 5th failure opens it: no 6th request"
        # While it stays open, only probes: one per cooldown.
        wait_until(lambda: len(switch.while_down) >= 7, 20, "two probes")
        gaps = [b - a for a, b in zip(switch.while_down[4:], switch.while_down[5:], strict=False)]
        assert all(g >= cooldown * 0.9 for g in gaps), gaps
        with switch.lock:
            switch.down = False
            failed = len(switch.while_down)
        recovered = wait_until(lambda: delivered(conn) == rows, 40, "every row delivered")
        seen = collections.Counter(rx.ids())
    events = collections.Counter(
        str(r[0])
        for r in conn.execute(
            "SELECT event FROM alert_delivery.delivery_log WHERE webhook_id = %s", (webhook_id,)
        ).fetchall()
    )
    deferred = conn.execute(
        "SELECT deferred FROM alert_delivery.webhook_health WHERE webhook_id = %s", (webhook_id,)
    ).fetchone()
    assert events["breaker_opened"] == 1 and events["deferred"] == 0
    assert deferred is not None and deferred[0] > 0
    assert len(seen) == rows and sum(seen.values()) == rows + failed
    print(
        f"\nreceiver outage: sent {sum(seen.values())} ({failed} while down: 5 then probes "
        f"{[round(g, 1) for g in gaps]} s apart), delivered {rows}, duplicates 0, lost 0, "
        f"deferrals counted {deferred[0]} (0 log rows), all delivered {recovered:.1f} s after "
        f"it came back (the next probe closes the breaker: cooldown {cooldown:.0f} s)"
    )


def test_a_poisoned_webhook_beside_a_healthy_one_the_healthy_rows_all_arrive(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    procs: list[subprocess.Popen[str]],
) -> None:
    with serve(Receiver()) as good_rx, serve(Receiver(always(200))) as bad_rx:
        good = hook(db_url, delivery_env, "healthy", good_rx.url)
        bad = hook(db_url, delivery_env, "poisoned", bad_rx.url)
        # Whatever makes one webhook's permit fail (a trigger stands in for it) fails every
        # claim that includes its rows: the engine must find it and set it aside.
        conn.execute(
            "CREATE FUNCTION alert_delivery.test_poison() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'integer out of range' USING ERRCODE = '22003'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER poison BEFORE UPDATE ON alert_delivery.webhook_health FOR EACH ROW"
            f" WHEN (OLD.webhook_id = {int(bad)})"
            " EXECUTE FUNCTION alert_delivery.test_poison()".encode()
        )
        procs.append(start_worker("survivor", capture=False))
        wait_until(lambda: live(conn, "survivor"), 20, "worker up")
        ids: list[int] = []
        for round_ in range(5):
            ids += enqueue(conn, bad, [{"bad": round_}], notify=False)
            ids += enqueue(conn, good, [{"r": round_, "i": i} for i in range(40)], notify=True)
        took = wait_until(lambda: delivered(conn, good) == 200, 30, "healthy rows delivered")
        assert procs[0].poll() is None, "the worker kept running"
        assert bad_rx.requests == []
        seen = collections.Counter(good_rx.ids())
        reason = conn.execute(
            "SELECT active, disabled_reason FROM alert_delivery.webhooks WHERE webhook_id = %s",
            (bad,),
        ).fetchone()
    assert reason is not None and reason[0] is False
    assert reason[1].startswith("paused by the delivery engine: a claim failed")
    waiting = [r for r in queue_rows(conn).values() if r["status"] == "pending"]
    assert len(waiting) == 5 and all("paused" in r["last_error"] for r in waiting)
    assert len(seen) == 200 and max(seen.values()) == 1
    print(
        f"\npoisoned webhook: healthy sent {sum(seen.values())}, delivered 200 in {took:.1f} s, "
        f"duplicates 0, lost 0; poisoned paused, its 5 rows waiting"
    )


def test_429_with_retry_after_is_honoured_within_a_second(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    procs: list[subprocess.Popen[str]],
) -> None:
    asked = 3.0
    first = Reply(429, headers={"Retry-After": str(int(asked))})

    def behave(n: int, _r: Received) -> Reply:
        return first if n == 0 else Reply(200)

    with serve(Receiver(behave)) as rx:
        webhook_id = hook(db_url, delivery_env, "busy", rx.url)
        procs.append(start_worker("polite", "--concurrency", "1", capture=False))
        wait_until(lambda: live(conn, "polite"), 20, "worker up")
        enqueue(conn, webhook_id, [{"i": i} for i in range(20)], notify=True)
        wait_until(lambda: delivered(conn) == 20, 30, "all delivered")
        got = rx.wait_for(21)
    gap = got[1].at - got[0].at
    assert asked <= gap <= asked + 1.0, gap
    health = conn.execute(
        "SELECT consecutive_failures, breaker_state, throttled FROM alert_delivery.webhook_health"
        " WHERE webhook_id = %s",
        (webhook_id,),
    ).fetchone()
    assert health == (0, "closed", 1), "a 429 is not a failure"
    print(
        f"\n429: sent {len(got)}, delivered 20, duplicates 0 (the 429'd row re-sent once), "
        f"lost 0; next request {gap:.2f} s after Retry-After: {asked:.0f}"
    )
