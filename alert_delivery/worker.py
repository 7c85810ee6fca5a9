"""`alert-delivery worker`: millisecond delivery, woken by LISTEN/NOTIFY, polling as a fallback.

Several workers (and Dagster runs) share the queue through SKIP LOCKED and leases. On SIGTERM a
worker stops claiming, finishes the attempts already on the wire, releases rows it holds but has
not tried, marks its heartbeat row stopped and exits.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import describe_host
from alert_delivery.db.queries import query
from alert_delivery.delivery.engine import BatchResult, Engine, EngineConfig, connect_async
from alert_delivery.delivery.loop import run
from alert_delivery.errors import DatabaseUnavailable

CHANNEL = "alert_delivery_queue"
log = logging.getLogger("alert_delivery.worker")


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 100
    poll_interval_s: float = 1.0
    heartbeat_s: float = 5.0
    max_batches_in_flight: int = 4


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        db_url: str,
        *,
        worker_id: str | None = None,
        options: WorkerOptions | None = None,
        config: EngineConfig | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.db_url = db_url
        self.worker_id = worker_id or new_worker_id()
        self.options = options or WorkerOptions()
        self.config = config or EngineConfig()
        self.settings = settings
        self.totals = BatchResult()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> BatchResult:
        settings = self.settings or load_settings()
        engine = await Engine.open(
            self.db_url, worker_id=self.worker_id, config=self.config, settings=settings
        )
        listener = await connect_async(self.db_url)
        await listener.execute(f"LISTEN {CHANNEL}")
        await self._heartbeat(engine.conn)
        tasks: set[asyncio.Task[BatchResult]] = set()
        background = [
            asyncio.create_task(self._listen(listener)),
            asyncio.create_task(self._beat(engine.conn)),
        ]
        log.info("worker %s started", self.worker_id)
        try:
            while not self._stop.is_set():
                self._wake.clear()
                rows = []
                if len(tasks) < self.options.max_batches_in_flight:
                    rows = await engine.claim(self.options.batch_size)
                    if rows:
                        task = asyncio.create_task(engine.process(rows))
                        tasks.add(task)
                        task.add_done_callback(lambda t: self._finished(t, tasks))
                    if len(rows) == self.options.batch_size:
                        continue
                    # A short batch drained what was due; a NOTIFY that came meanwhile has set
                    # _wake, so waiting now loses nothing.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_interval_s)
            # Attempts that already hold a slot finish; the rest come back released.
            engine.stopping = True
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for bg in background:
                bg.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            with contextlib.suppress(psycopg.Error):
                await engine.conn.execute(query("delivery", "worker_stopped"), self._counts())
            await listener.close()
            await engine.close()
            log.info("worker %s stopped: %s", self.worker_id, self.totals)
        return self.totals

    def _finished(
        self, task: asyncio.Task[BatchResult], tasks: set[asyncio.Task[BatchResult]]
    ) -> None:
        # Wake the claim loop only if it is waiting for a free batch slot: waking it after every
        # batch cost an empty claim per batch, queued ahead of the next NOTIFY's claim.
        if len(tasks) >= self.options.max_batches_in_flight:
            self._wake.set()
        tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # Rows stay leased and come back when the lease ends: nothing is lost.
            log.error("batch failed: %s: %s", type(exc).__name__, exc)
        else:
            self.totals.add(task.result())

    async def _listen(self, listener: psycopg.AsyncConnection[Any]) -> None:
        async for _ in listener.notifies():
            self._wake.set()

    def _counts(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "delivered": self.totals.delivered,
            "failed": self.totals.retrying + self.totals.dead,
        }

    async def _heartbeat(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(query("delivery", "worker_heartbeat"), self._counts())

    async def _beat(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat_s)
            try:
                await self._heartbeat(conn)
            except psycopg.Error as exc:
                log.warning("heartbeat failed: %s", type(exc).__name__)


def run_worker(
    db_url: str,
    *,
    worker_id: str | None = None,
    options: WorkerOptions | None = None,
    config: EngineConfig | None = None,
) -> BatchResult:
    """Run until SIGTERM or SIGINT; returns what this worker did."""

    async def main() -> BatchResult:
        worker = Worker(db_url, worker_id=worker_id, options=options, config=config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        try:
            return await worker.run()
        except psycopg.OperationalError as exc:
            # Leased rows come back when their lease ends; a supervisor restarts the worker.
            cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DatabaseUnavailable(describe_host(db_url), cause) from None

    return run(main())
