"""The delivery engine: claim -> decide -> send -> record, and its two drivers.

Read in this order:

- ``store.claim`` leases due rows, each a complete, frozen ``Claimed`` (a new row's body is
  rendered there, once; it is stored with the row's first outcome, so every later attempt signs
  and sends the same bytes and keeps the same ``webhook-id``);
- ``decisions.Decisions``: what each row becomes (set aside, held over its permit, prepared and
  signed, its attempt's outcome decided);
- ``lanes.Lanes``: a fixed set of lanes send rows, asking the breakers before every attempt;
- ``recorder.Recorder``: outcomes written in groups of at most 50 rows or 20 ms, so a crash
  re-sends at most what was on the wire or waiting for its group.

:class:`Engine` ties them together; :func:`drain` keeps a few batches in flight (the worker has
its own claim loop, ``alert_delivery.worker``); :func:`deliver_batch` is the synchronous entry
point for Dagster runs, the CLI and the demo. No lock is held while HTTP is in flight: rows are
leased. A row or webhook that makes the engine fail is set aside with its reason: a row whose
attempt raised is dead-lettered, a webhook whose rows make the claim fail is paused.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import set_json_loads

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import connect_async, connection_lost
from alert_delivery.delivery import metrics, store
from alert_delivery.delivery.batch import Batch, BatchResult
from alert_delivery.delivery.body import ERROR_MAX, loads_utf8
from alert_delivery.delivery.breaker import Breakers
from alert_delivery.delivery.decisions import Decisions, serialise
from alert_delivery.delivery.http_client import HttpSender, open_sender
from alert_delivery.delivery.lanes import Lanes
from alert_delivery.delivery.loop import run as run_loop
from alert_delivery.delivery.outcome import Attempt, Verdict, decide
from alert_delivery.delivery.recorder import GROUP_ROWS, Recorder
from alert_delivery.delivery.secrets import Vault, load_vault
from alert_delivery.delivery.sender import SenderConfig
from alert_delivery.delivery.ssrf import announce_allow_list
from alert_delivery.delivery.store import Claimed

__all__ = [
    "GROUP_ROWS",
    "BatchResult",
    "Engine",
    "EngineConfig",
    "decide",
    "deliver_batch",
    "drain",
    "serialise",
]

log = logging.getLogger("alert_delivery.delivery")


@dataclass(frozen=True)
class EngineConfig:
    sender: SenderConfig = field(default_factory=SenderConfig)
    lease_s: float = 120.0
    retry_after_cap_s: float = 3600.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 60.0
    smtp_timeout_s: float = 10.0


class Engine:
    """Delivers claimed rows. Create with :meth:`open` inside a running loop."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        claim_conn: psycopg.AsyncConnection[Any],
        sender: HttpSender,
        vault: Vault,
        settings: Settings,
        config: EngineConfig,
        *,
        worker_id: str,
        run_id: str | None = None,
    ) -> None:
        self.conn = conn
        """Outcomes, inbox rows and the worker's heartbeat."""
        self.claim_conn = claim_conn
        """Claims only: a new row never queues behind a group's outcome statement (which waits
        for its WAL flush), which is the worker's latency path."""
        self.sender = sender
        self.settings = settings
        self.config = config
        self.worker_id = worker_id
        self.run_id = run_id
        self.breakers = Breakers(
            config.breaker_threshold, config.breaker_cooldown_s, config.retry_after_cap_s
        )
        self.recorder = Recorder(
            conn,
            self.breakers,
            breaker_threshold=config.breaker_threshold,
            cooldown_s=config.breaker_cooldown_s,
            worker_id=worker_id,
            run_id=run_id,
        )
        self.decisions = Decisions(
            vault,
            settings,
            self.breakers,
            self.recorder.add,
            retry_after_cap_s=config.retry_after_cap_s,
            smtp_timeout_s=config.smtp_timeout_s,
        )
        self.lanes = Lanes(self.decisions, sender.post, config.sender.concurrency)

    @classmethod
    async def open(
        cls,
        db_url: str,
        *,
        worker_id: str,
        run_id: str | None = None,
        config: EngineConfig | None = None,
        settings: Settings | None = None,
    ) -> "Engine":
        settings = settings or load_settings()
        config = config or EngineConfig()
        vault = load_vault(settings)
        announce_allow_list(settings.allowed_targets)
        # First: a client that is not installed fails before any connection is opened.
        sender = open_sender(settings.http_client, config.sender, settings.allowed_targets)
        conn: psycopg.AsyncConnection[Any] | None = None
        claim_conn: psycopg.AsyncConnection[Any] | None = None
        try:
            conn = await connect_async(db_url)
            claim_conn = await connect_async(db_url)
            set_json_loads(loads_utf8, claim_conn)
            await store.prepare(
                claim_conn,
                conn,
                worker_id=worker_id,
                lease_s=config.lease_s,
                cooldown_s=config.breaker_cooldown_s,
            )
        except BaseException:
            # Nothing is left open when a connect or the planning fails.
            for c in (claim_conn, conn):
                if c is not None:
                    try:
                        await c.close()
                    except Exception as exc:  # closing what failed must not hide why
                        log.debug("closing a connection failed: %s", type(exc).__name__)
            try:
                await sender.close()
            except Exception as exc:
                log.debug("closing the sender failed: %s", type(exc).__name__)
            raise
        return cls(
            conn, claim_conn, sender, vault, settings, config, worker_id=worker_id, run_id=run_id
        )

    @property
    def stopping(self) -> bool:
        return self.lanes.stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        """Set by the worker on SIGTERM: attempts on the wire finish, untried rows are released."""
        self.lanes.stopping = value

    @property
    def soonest(self) -> float | None:
        """Monotonic time the earliest row this engine deferred or throttled is due again, so
        the worker can claim it then rather than at its next poll."""
        return self.decisions.soonest

    @soonest.setter
    def soonest(self, value: float | None) -> None:
        self.decisions.soonest = value

    async def close(self) -> None:
        await self.lanes.close()
        await self.recorder.close()
        await self.sender.close()
        await self.conn.close()
        await self.claim_conn.close()

    async def claim(self, limit: int, *, min_age_s: float = 0.0) -> list[Claimed]:
        """Lease due rows (new ones rendered). A claim that fails on some webhook's rows pauses
        that webhook and claims again."""
        try:
            rows = await self._claim(limit, min_age_s)
        except psycopg.Error as exc:
            if connection_lost(exc) or not await self._set_aside_claim_failure(exc):
                raise
            rows = await self._claim(limit, min_age_s)
        metrics.claim_succeeded(len(rows))
        seen: set[int] = set()
        for row in rows:
            if row.webhook_id not in seen:
                seen.add(row.webhook_id)
                self.breakers.shared(row.webhook_id, row.breaker, row.failures, row.wait_s)
        return rows

    async def process(self, rows: Sequence[Claimed]) -> BatchResult:
        """Deliver leased rows and record every outcome (in groups); returns the counts."""
        batch = Batch(rows)
        if not rows:
            return batch.result
        decisions = self.decisions
        granted = decisions.permit(decisions.set_aside(rows, batch), batch)
        inbox = [row for row in granted if row.kind == "inbox"]
        if inbox:
            await self._deliver_inboxes(inbox)
            for row in inbox:
                decisions.done(row, batch, Attempt(Verdict.DELIVERED, latency_ms=0.0))
        self.lanes.submit([row for row in granted if row.kind != "inbox"], batch)
        try:
            await batch.finished
        except asyncio.CancelledError:
            batch.abandoned = True
            raise
        return batch.result

    async def _claim(self, limit: int, min_age_s: float, only: int | None = None) -> list[Claimed]:
        return await store.claim(
            self.claim_conn,
            limit=limit,
            worker_id=self.worker_id,
            lease_s=self.config.lease_s,
            min_age_s=min_age_s,
            cooldown_s=self.config.breaker_cooldown_s,
            only=only,
            runbook_base=self.settings.runbook_url,
        )

    async def _set_aside_claim_failure(self, exc: psycopg.Error) -> bool:
        """Find the webhooks whose rows make a claim fail (a claim of one row of each, rolled
        back) and pause them; True when one was found, so the claim can be tried again."""
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = f"paused by the delivery engine: a claim failed: {type(exc).__name__}: {cause}"
        found = False
        for webhook_id in await store.due_webhooks(self.claim_conn):
            try:
                async with self.claim_conn.transaction(force_rollback=True):
                    await self._claim(1, 0.0, only=webhook_id)
            except psycopg.Error as failed:
                if connection_lost(failed):
                    raise
                found = True
                log.warning("webhook %d set aside: %s", webhook_id, reason)
                await store.pause_webhook(
                    self.claim_conn,
                    webhook_id,
                    reason=reason[:ERROR_MAX],
                    worker_id=self.worker_id,
                    run_id=self.run_id,
                )
        return found

    async def _deliver_inboxes(self, rows: Sequence[Claimed]) -> None:
        inbox: list[tuple[str, int | None, int, str, str, str]] = []
        for row in rows:
            p = row.payload
            for recipient in row.config.get("recipients", []):
                inbox.append(
                    (
                        str(recipient),
                        row.alert_id,
                        row.delivery_id,
                        str(p.get("severity", "INFO")),
                        str(p.get("title", "")),
                        str(p.get("body", "")),
                    )
                )
        await store.insert_inbox(self.conn, inbox)


async def drain(
    engine: Engine,
    *,
    limit: int,
    batch_size: int = 500,
    min_age_s: float = 0.0,
    depth: int = 3,
) -> BatchResult:
    """Claim and deliver until ``limit`` rows were claimed or nothing is due.

    Up to ``depth`` batches are in flight at once, so the lanes keep sending while another batch
    is being claimed or recorded. The first claim is two rows per lane: sending starts after a
    small claim, and the lanes stay busy while the first full batch is claimed.
    """
    total = BatchResult()
    claimed = 0
    size = min(batch_size, 2 * engine.config.sender.concurrency)
    exhausted = False
    in_flight: set[asyncio.Task[BatchResult]] = set()
    failure: BaseException | None = None
    while True:
        while not exhausted and failure is None and claimed < limit and len(in_flight) < depth:
            wanted = min(size, limit - claimed)
            rows = await engine.claim(wanted, min_age_s=min_age_s)
            claimed += len(rows)
            if rows:
                in_flight.add(asyncio.create_task(engine.process(rows)))
            # A short claim took everything due: what comes due later is the next run's.
            exhausted = len(rows) < wanted
            size = batch_size
        if not in_flight:
            break
        done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is None:
                total.add(task.result())
            elif failure is None:
                # Let the other batches finish and record their outcomes, then raise; this
                # batch's rows stay leased and come back when the lease ends.
                failure = exc
    if failure is not None:
        raise failure
    return total


def deliver_batch(
    db_url: str,
    *,
    limit: int = 500,
    worker_id: str,
    run_id: str | None = None,
    min_age_s: float = 0.0,
    config: EngineConfig | None = None,
    settings: Settings | None = None,
) -> BatchResult:
    """Claim up to ``limit`` due rows and deliver them; synchronous (runs its own event loop)."""

    async def run() -> BatchResult:
        engine = await Engine.open(
            db_url, worker_id=worker_id, run_id=run_id, config=config, settings=settings
        )
        try:
            return await drain(engine, limit=limit, batch_size=min(limit, 500), min_age_s=min_age_s)
        finally:
            await engine.close()

    return run_loop(run())
