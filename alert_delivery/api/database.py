"""The API's database access: a few pooled psycopg connections used from worker threads.

The alerting core is synchronous (psycopg ``Connection``); handlers run it in a thread pool so
the event loop keeps accepting requests. Each unit of work is one transaction that commits
before the handler answers. A connection the server dropped is discarded, never reused; the
failure surfaces as ``DatabaseUnavailable`` (answered 503 with ``Retry-After``).
"""

import asyncio
import contextlib
import functools
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psycopg
from psycopg import pq

from alert_delivery.db.connection import connect, connection_lost, unavailable

T = TypeVar("T")


class Database:
    def __init__(self, url: str, *, threads: int = 8, connect_timeout_s: int = 3) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="api-db")

    def _borrow(self) -> psycopg.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return connect(self.url, autocommit=True, connect_timeout=self.connect_timeout_s)

    def _give_back(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.close()
        else:
            self._idle.put(conn)

    def run_sync(self, work: Callable[[psycopg.Connection], T], *, transaction: bool = True) -> T:
        """``work(conn)`` inside one transaction, committed before this returns. Without
        ``transaction`` each statement of ``work`` commits on its own (autocommit): for work that
        is one statement, durable when it returns, with no BEGIN and COMMIT round trips (on a
        one-alert POST they cost more than raising the alert)."""
        conn = self._borrow()
        try:
            with conn.transaction() if transaction else contextlib.nullcontext():
                result = work(conn)
        except BaseException as exc:
            if conn.closed or connection_lost(exc) or conn.broken:
                conn.close()
                if connection_lost(exc):
                    raise unavailable(self.url, exc) from None
            else:
                self._give_back(conn)
            raise
        self._give_back(conn)
        return result

    async def run(self, work: Callable[[psycopg.Connection], T], *, transaction: bool = True) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self.run_sync, work, transaction=transaction)
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
