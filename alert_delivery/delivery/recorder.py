"""Outcomes recorded in small groups: what a crash can re-send is what was on the wire.

A group is at most ``GROUP_ROWS`` rows, the first waiting at most ``GROUP_WAIT_S``; one group is
written at a time, in one autocommit statement with its log rows, then the breaker counters, and
the breakers learn what ``webhook_health`` says after it (other processes' failures included).
"""

import asyncio
import contextlib
import logging
import time
from typing import Any

import psycopg

from alert_delivery.db.connection import connection_lost
from alert_delivery.delivery import metrics, store
from alert_delivery.delivery.batch import Batch
from alert_delivery.delivery.breaker import Breakers
from alert_delivery.delivery.outcome import Attempt, Verdict, account
from alert_delivery.delivery.store import Claimed, HealthDelta, Outcome

log = logging.getLogger("alert_delivery.delivery")

GROUP_ROWS = 50
GROUP_WAIT_S = 0.020
"""Outcomes are recorded in groups of at most GROUP_ROWS rows, the first waiting at most
GROUP_WAIT_S: what a crash can re-send beyond the requests on the wire."""
HEALTH_EVERY_S = 0.25
"""Counters of groups that only succeeded are written at most this often (merged); a failure,
a 429, a probe or a deferral is written with its own group, so the shared breaker never waits."""

_Entry = tuple[Claimed, Batch, Outcome, Attempt | None, float]


class Recorder:
    """Writes outcomes in groups of at most GROUP_ROWS rows or GROUP_WAIT_S, one group at a time
    on the engine's outcome connection, and feeds the breakers what webhook_health then says."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        breakers: Breakers,
        *,
        breaker_threshold: int,
        cooldown_s: float,
        worker_id: str,
        run_id: str | None,
    ) -> None:
        self.conn = conn
        self.breakers = breakers
        self.breaker_threshold = breaker_threshold
        self.cooldown_s = cooldown_s
        self.worker_id = worker_id
        self.run_id = run_id
        self.pending: list[_Entry] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.health: dict[int, HealthDelta] = {}
        """Counters not written yet (groups that only succeeded)."""
        self.health_at = time.monotonic()

    def add(self, row: Claimed, batch: Batch, outcome: Outcome, attempt: Attempt | None) -> None:
        pending = self.pending
        pending.append((row, batch, outcome, attempt, time.monotonic()))
        if self.task is None:
            self.task = asyncio.create_task(self._run())
        if len(pending) == 1 or len(pending) >= GROUP_ROWS:
            self.wake.set()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.health:
            health, self.health = self.health, {}
            try:
                await self._write_health(health)
            except psycopg.Error as exc:  # counters only: the outcomes are all recorded
                log.warning("the last delivery counters were not written: %s", type(exc).__name__)

    async def _run(self) -> None:
        while True:
            if not self.pending:
                self.wake.clear()
                await self.wake.wait()
                continue
            wait = self.pending[0][4] + GROUP_WAIT_S - time.monotonic()
            if len(self.pending) < GROUP_ROWS and wait > 0:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)
                continue
            group, self.pending = self.pending[:GROUP_ROWS], self.pending[GROUP_ROWS:]
            try:
                await self._write(group)
            except Exception as exc:
                if connection_lost(exc):
                    for entry in group:
                        entry[1].fail(exc)
                    continue
                await self._one_by_one(group, exc)

    async def _write(self, group: list[_Entry]) -> None:
        health = self.health
        urgent = False
        gone: dict[int, str] = {}
        for row, _batch, outcome, attempt, _at in group:
            d = health.get(row.webhook_id)
            if d is None:
                d = health[row.webhook_id] = HealthDelta()
            if attempt is not None:
                account(d, attempt)
                if attempt.verdict is not Verdict.DELIVERED or row.probe:
                    urgent = True
                if attempt.verdict is Verdict.THROTTLED:
                    d.throttle_s = max(d.throttle_s or 0.0, outcome.delay_s)
                elif attempt.verdict is Verdict.GONE:
                    gone[row.webhook_id] = attempt.error or "HTTP 410 Gone"
            elif outcome.log_event == "deferred":
                d.deferred += 1
                urgent = True
        now = time.monotonic()
        if urgent or now - self.health_at >= HEALTH_EVERY_S:
            self.health, self.health_at = {}, now
        else:
            health = {}
        # One autocommit statement: the worker shares this connection between concurrent
        # batches, so an explicit transaction here could swallow another batch's claim.
        await store.record(
            self.conn,
            [entry[2] for entry in group],
            {},
            worker_id=self.worker_id,
            run_id=self.run_id,
            breaker_threshold=self.breaker_threshold,
        )
        for b in await self._health(health):
            self.breakers.shared(b.webhook_id, b.state, b.failures, b.open_for_s)
        for webhook_id, reason in gone.items():
            await store.endpoint_gone(
                self.conn, webhook_id, reason=reason, worker_id=self.worker_id, run_id=self.run_id
            )
        metrics.count_outcomes((entry[2].log_event, entry[0].kind) for entry in group)
        for row, batch, outcome, _attempt, _at in group:
            batch.recorded(row, outcome)

    async def _health(self, health: dict[int, HealthDelta]) -> list[store.SharedBreaker]:
        """Counters and breakers after the outcomes are safe; a webhook whose health row cannot
        be written (whatever the reason) loses these counters, never the others theirs."""
        if not health:
            return []
        try:
            return await self._write_health(health)
        except psycopg.Error as exc:
            if connection_lost(exc) or len(health) == 1:
                if not connection_lost(exc):
                    log.warning("health of webhook %s not written: %s", *health, type(exc).__name__)
                    return []
                raise
        shared: list[store.SharedBreaker] = []
        for webhook_id, delta in health.items():
            shared += await self._health({webhook_id: delta})
        return shared

    async def _one_by_one(self, group: list[_Entry], exc: Exception) -> None:
        """A group that failed for a reason other than a lost connection: each row alone, so
        one bad outcome cannot stop the others; a row that still fails stays leased (it comes
        back when the lease ends) and its batch reports the error."""
        log.error(
            "recording %d outcomes failed (%s); recording them one by one",
            len(group),
            type(exc).__name__,
        )
        for entry in group:
            try:
                await self._write([entry])
            except Exception as failed:
                entry[1].fail(failed)

    async def _write_health(self, health: dict[int, HealthDelta]) -> list[store.SharedBreaker]:
        return await store.record_health(
            self.conn,
            health,
            breaker_threshold=self.breaker_threshold,
            cooldown_s=self.cooldown_s,
            worker_id=self.worker_id,
        )
