"""`alert-delivery worker`: millisecond delivery, woken by LISTEN/NOTIFY, polling as a fallback.

Several workers (and Dagster runs) share the queue through SKIP LOCKED and leases. On SIGTERM a
worker stops claiming, finishes the attempts already on the wire, releases rows it holds but has
not tried, marks its heartbeat row stopped and exits.
"""

import asyncio
import contextlib
import gc
import logging
import os
import random
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import (
    connect_async,
    connection_lost,
    database_errors,
    unavailable,
)
from alert_delivery.db.queries import query
from alert_delivery.delivery.engine import BatchResult, Engine, EngineConfig
from alert_delivery.delivery.loop import run

CHANNEL = "alert_delivery_queue"
log = logging.getLogger("alert_delivery.worker")
# Reconnect waits: doubling from 0.1 s up to 2 s, each between half and all of that at random so
# workers that lost the same server do not return in step. 2 s keeps the resume within 5 s of the
# server answering again.
RECONNECT_BASE_S = 0.1
RECONNECT_CAP_S = 2.0
DUE_SLACK_S = 0.05


def reconnect_delay(failures: int, rand: float) -> float:
    """Seconds to wait after ``failures`` consecutive failed connects; ``rand`` in [0, 1)."""
    ceiling = min(RECONNECT_CAP_S, RECONNECT_BASE_S * 2.0 ** min(max(failures - 1, 0), 16))
    return ceiling * (0.5 + 0.5 * rand)


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 100
    poll_interval_s: float = 1.0
    heartbeat_s: float = 5.0
    max_batches_in_flight: int = 4
    """Rows in flight (claimed, not yet recorded) are capped at this many batches' worth; a
    claim asks only for the room left. Counting batches instead let four one-row claims, each
    waiting up to a recorder group (20 ms), stall the claim loop: p90 commit -> receipt at
    200/s went from 13.9 ms to 4.6 ms when the cap became rows."""


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
        self._failure: BaseException | None = None
        self._failures = 0
        self._down_since: float | None = None

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> BatchResult:
        """Deliver until stopped. A lost database is waited out: the worker reconnects with
        capped, jittered backoff, and rows it held come back by lease."""
        settings = self.settings or load_settings()
        log.info("worker %s started", self.worker_id)
        try:
            while not self._stop.is_set():
                try:
                    await self._session(settings)
                except Exception as exc:
                    if not connection_lost(exc):
                        raise
                    self._lost(exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._stop.wait(), reconnect_delay(self._failures, random.random())
                        )
        finally:
            log.info("worker %s stopped: %s", self.worker_id, self.totals)
        return self.totals

    def _lost(self, exc: BaseException) -> None:
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            # One line per state change: the attempts while it stays down are logged at DEBUG.
            log.warning(
                "database unavailable: %s; retrying every %.0f s at most",
                unavailable(self.db_url, exc),
                RECONNECT_CAP_S,
            )
        else:
            log.debug("database still unavailable: %s", unavailable(self.db_url, exc))

    def _connected(self) -> None:
        self._failures = 0
        if self._down_since is not None:
            log.warning("database back after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None

    async def _session(self, settings: Settings) -> None:
        """One connected stretch: returns when stopped, raises when the database goes away."""
        self._failure = None
        engine = await Engine.open(
            self.db_url, worker_id=self.worker_id, config=self.config, settings=settings
        )
        listener: psycopg.AsyncConnection[Any] | None = None
        tasks: dict[asyncio.Task[BatchResult], int] = {}
        room = self.options.max_batches_in_flight * self.options.batch_size
        background: list[asyncio.Task[None]] = []
        stopped = False
        try:
            listener = await connect_async(self.db_url)
            await listener.execute(f"LISTEN {CHANNEL}")
            await self._heartbeat(engine.conn)
            self._connected()
            background = [
                asyncio.create_task(self._listen(listener)),
                asyncio.create_task(self._beat(engine.conn)),
            ]
            for bg in background:
                bg.add_done_callback(self._background_ended)
            while not self._stop.is_set():
                if self._failure is not None:
                    raise self._failure
                self._wake.clear()
                wanted = min(self.options.batch_size, room - sum(tasks.values()))
                if wanted > 0:
                    rows = await engine.claim(wanted)
                    if rows:
                        task = asyncio.create_task(engine.process(rows))
                        tasks[task] = len(rows)
                        task.add_done_callback(lambda t: self._finished(t, tasks, room))
                    if len(rows) == wanted:
                        continue
                    # A short batch drained what was due; a NOTIFY that came meanwhile has set
                    # _wake, so waiting now loses nothing.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_wait(engine))
            # Attempts that already hold a slot finish; the rest come back released.
            engine.stopping = True
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            stopped = True
        finally:
            if not stopped:
                # The database is gone: outcomes could not be recorded, so waiting for the
                # attempts on the wire only delays the reconnect. Their rows come back by lease.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for bg in background:
                bg.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if stopped:
                with contextlib.suppress(psycopg.Error):
                    await engine.conn.execute(query("delivery", "worker_stopped"), self._counts())
            with contextlib.suppress(psycopg.Error):
                if listener is not None:
                    await listener.close()
                await engine.close()

    def _idle_wait(self, engine: Engine) -> float:
        """The poll interval, or less when a row this engine deferred (a 429's Retry-After, an
        open breaker, a drained bucket) comes due sooner: it is claimed then, not a poll later."""
        wait = self.options.poll_interval_s
        if engine.soonest is not None:
            # A little after: the row's due time was set by the database a few ms later.
            until = engine.soonest + DUE_SLACK_S - time.monotonic()
            if until <= wait:
                engine.soonest = None
                wait = max(until, 0.0)
        return wait

    def _background_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()
            self._wake.set()

    def _finished(
        self,
        task: asyncio.Task[BatchResult],
        tasks: dict[asyncio.Task[BatchResult], int],
        room: int,
    ) -> None:
        # Wake the claim loop only if it is waiting for room: waking it after every batch cost
        # an empty claim per batch, queued ahead of the next NOTIFY's claim.
        if sum(tasks.values()) >= room:
            self._wake.set()
        tasks.pop(task, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and connection_lost(exc):
            # The session ends and says so in one line; the rows come back by lease.
            self._failure = self._failure or exc
            self._wake.set()
        elif exc is not None:
            # Rows stay leased and come back when the lease ends: nothing is lost.
            log.error("batch failed: %s: %s", type(exc).__name__, exc)
        else:
            self.totals.add(task.result())

    async def _listen(self, listener: psycopg.AsyncConnection[Any]) -> None:
        async for _ in listener.notifies():
            self._wake.set()
        # notifies() ends only with its connection: without it no NOTIFY would wake us.
        raise psycopg.OperationalError("the LISTEN connection ended")

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
                if connection_lost(exc):
                    raise  # ends the session (_background_ended)
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
        return await worker.run()

    with database_errors(db_url), worker_gc():
        return run(main())


# A delivery's objects (request, response, rows, outcomes) die young and form few cycles;
# collecting the youngest generation every 700 allocations, and scanning every long-lived import
# on the older passes, cost about 4 % of the delivery throughput (bench delivery). Only here, in
# the worker's own process: a Dagster run never imports this module.
_GC_THRESHOLD = (50_000, 20, 20)


@contextlib.contextmanager
def worker_gc() -> Iterator[None]:
    """The worker process's collector: what exists before it starts is never scanned again."""
    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
