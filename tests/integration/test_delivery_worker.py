"""The worker in-process (polling fallback, NOTIFY wake-up, heartbeat) and the migration."""

import asyncio
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg

from alert_delivery.config import Settings
from alert_delivery.db.migrations import upgrade
from alert_delivery.db.queries import sql_dir
from alert_delivery.delivery.engine import EngineConfig, deliver_batch
from alert_delivery.delivery.registry import add_webhook
from alert_delivery.worker import Worker, WorkerOptions
from tests.support.delivery import FAST, client_env, delivery_env, enqueue, http_client, queue_rows
from tests.support.receivers import Receiver, always, serve

__all__ = ["client_env", "delivery_env", "http_client"]


class Running:
    """A Worker on its own event loop in a thread, stopped like SIGTERM would."""

    def __init__(
        self,
        db_url: str,
        settings: Settings,
        worker_id: str,
        options: WorkerOptions,
        config: EngineConfig = FAST,
    ) -> None:
        self.worker = Worker(
            db_url, worker_id=worker_id, config=config, settings=settings, options=options
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self.worker.run())

    def __enter__(self) -> Worker:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(20)
        self.loop.close()


def test_worker_delivers_on_notify_and_by_polling_and_keeps_a_heartbeat(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver()) as rx:
        hook = add_webhook(db_url, name="w", kind="webhook", url=rx.url, settings=delivery_env)
        options = WorkerOptions(poll_interval_s=0.3, heartbeat_s=0.2)
        with Running(db_url, delivery_env, "inproc", options):
            enqueue(conn, hook.webhook_id, [{"n": 1}], notify=True)
            rx.wait_for(1, timeout_s=5)
            enqueue(conn, hook.webhook_id, [{"n": 2}], notify=False)
            rx.wait_for(2, timeout_s=5)
            time.sleep(0.5)
            beat = conn.execute(
                "SELECT stopped_at IS NULL, heartbeat_at > now() - interval '2 s', delivered"
                " FROM alert_delivery.workers WHERE worker_id = 'inproc'"
            ).fetchone()
            assert beat is not None and beat[0] and beat[1]
    row = conn.execute(
        "SELECT stopped_at IS NOT NULL, delivered FROM alert_delivery.workers"
    ).fetchone()
    assert row == (True, 2)
    assert {r["status"] for r in queue_rows(conn).values()} == {"delivered"}


def test_oversized_payload_is_dead_not_sent(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver()) as rx:
        hook = add_webhook(db_url, name="big", kind="webhook", url=rx.url, settings=client_env)
        [did] = enqueue(conn, hook.webhook_id, [{"blob": "x" * 300_000}])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert rx.requests == []
    assert result.dead == 1
    assert "exceeds the cap" in queue_rows(conn)[did]["last_error"]


def test_dashboard_views_answer(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    hook = add_webhook(
        db_url, name="v", kind="webhook", url="http://127.0.0.1:9/v", settings=delivery_env
    )
    enqueue(conn, hook.webhook_id, [{"n": 1}])
    depth = conn.execute(
        "SELECT status, depth FROM alert_delivery.v_queue_health WHERE depth > 0"
    ).fetchall()
    assert depth == [("pending", 1)]
    perf = conn.execute("SELECT name, breaker_state FROM alert_delivery.v_webhook_performance")
    assert perf.fetchall() == [("v", "closed")]
    assert conn.execute("SELECT name FROM alert_delivery.v_degraded_webhooks").fetchall() == []
    conn.execute("UPDATE alert_delivery.webhooks SET active = false")
    assert conn.execute("SELECT name FROM alert_delivery.v_degraded_webhooks").fetchall() == [
        ("v",)
    ]


def test_migration_applies_on_top_of_0001_alone(empty_db_url: str, tmp_path: Path) -> None:
    for name in ("0001_data_model.sql", "0004_delivery.sql"):
        shutil.copy(sql_dir() / "migrations" / name, tmp_path / name)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert [m.version for m in upgrade(conn, tmp_path)] == [1, 4]
        conn.execute("INSERT INTO alert_delivery.webhooks (name, kind) VALUES ('x', 'inbox')")
        health = conn.execute("SELECT count(*) FROM alert_delivery.webhook_health").fetchone()
        assert health == (1,), "the trigger gives every webhook a health row"


def test_a_slow_receiver_does_not_hold_back_the_next_claim(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    """Rows in flight are capped as rows, not batches: with room for one batch, a one-row batch
    waiting on a slow receiver still leaves room to claim and send a row that comes next (when
    batches were counted, the second row waited for the first one's reply and outcome)."""
    held_s = 4.0
    config = replace(FAST, sender=replace(FAST.sender, read_timeout_s=10.0))
    with serve(Receiver(always(200, delay_s=held_s))) as slow, serve(Receiver()) as fast:
        slow_hook = add_webhook(
            db_url, name="slow", kind="webhook", url=slow.url, settings=delivery_env
        )
        fast_hook = add_webhook(
            db_url, name="fast", kind="webhook", url=fast.url, settings=delivery_env
        )
        options = WorkerOptions(poll_interval_s=30.0, max_batches_in_flight=1)
        with Running(db_url, delivery_env, "room", options, config):
            enqueue(conn, slow_hook.webhook_id, [{"n": 1}], notify=True)
            [held] = slow.wait_for(1, timeout_s=5)
            enqueue(conn, fast_hook.webhook_id, [{"n": 2}], notify=True)
            [sent] = fast.wait_for(1, timeout_s=held_s / 2)
            assert sent.at < held.at + held_s
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                statuses = {r["status"] for r in queue_rows(conn).values()}
                if statuses == {"delivered"}:
                    break
                time.sleep(0.05)
            assert statuses == {"delivered"}
