"""The API's database access: a few pooled psycopg connections.

Most handlers run synchronous work (psycopg ``Connection``: the lifecycle, silences, reads) in a
thread pool so the event loop keeps accepting requests. Raising alerts, the hot path, runs on
async connections in the event loop itself (``run_async``): the hand-off to a thread and back
cost a one-alert POST ~0.5 ms of CPU and ~0.9 ms of wall time (measured on 2 cores, 1,000
sequential raises). Each unit of work commits before the handler answers. A connection the
server dropped is discarded, never reused; the failure surfaces as ``DatabaseUnavailable``
(answered 503 with ``Retry-After``).
"""

import asyncio
import functools
import queue
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import pq

from alert_delivery.db.connection import connect, connect_async, connection_lost, unavailable

T = TypeVar("T")
AnyConnection = psycopg.Connection | psycopg.AsyncConnection[Any]


def _reusable(conn: AnyConnection) -> bool:
    return not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE


def _unusable_after(conn: AnyConnection, exc: BaseException) -> bool:
    return conn.closed or conn.broken or connection_lost(exc)


class Database:
    def __init__(self, url: str, *, threads: int = 8, connect_timeout_s: int = 3) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="api-db")
        # Used from the event loop only; as many connections as threads at most.
        self._idle_async: list[psycopg.AsyncConnection[Any]] = []
        self._async_slots = asyncio.Semaphore(threads)

    def _borrow(self) -> psycopg.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return connect(self.url, autocommit=True, connect_timeout=self.connect_timeout_s)

    def _give_back(self, conn: psycopg.Connection) -> None:
        if _reusable(conn):
            self._idle.put(conn)
        else:
            conn.close()

    def run_sync(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work(conn)`` inside one transaction, committed before this returns."""
        conn = self._borrow()
        try:
            with conn.transaction():
                result = work(conn)
        except BaseException as exc:
            if _unusable_after(conn, exc):
                conn.close()
                if connection_lost(exc):
                    raise unavailable(self.url, exc) from None
            else:
                self._give_back(conn)
            raise
        self._give_back(conn)
        return result

    async def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self.run_sync, work))

    async def run_async(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``await work(conn)`` on an autocommit connection, in the event loop: for work whose
        statements each commit on their own (one ``raise_alerts`` call)."""
        async with self._async_slots:
            if self._idle_async:
                conn = self._idle_async.pop()
            else:
                conn = await connect_async(self.url, connect_timeout=self.connect_timeout_s)
            try:
                result = await work(conn)
            except BaseException as exc:
                if _unusable_after(conn, exc):
                    await conn.close()
                    if connection_lost(exc):
                        raise unavailable(self.url, exc) from None
                else:
                    await self._give_back_async(conn)
                raise
            await self._give_back_async(conn)
            return result

    async def _give_back_async(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if _reusable(conn):
            self._idle_async.append(conn)
        else:
            await conn.close()

    async def aclose(self) -> None:
        """Close the event loop's connections (then ``close`` for the threads')."""
        while self._idle_async:
            await self._idle_async.pop().close()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
