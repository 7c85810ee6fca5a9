"""The delivery engine: claim -> render -> permit -> sign -> send -> outcome + log, two drivers.

The async :class:`Engine` is what the worker runs; :func:`deliver_batch` is the synchronous entry
point for Dagster runs, the CLI and the demo. No lock is held while HTTP is in flight: rows are
leased, and outcomes are written in one statement per batch.

A row's body is rendered once, in Python, when the engine first claims it: the claim returns the
alert messages of rows without a body, the engine renders them (``alert_delivery.channels``) and
stores every body of the claim in one statement, committed before any is sent. Retries send the
stored text byte for byte; a row whose rendering fails is dead-lettered, the others go on.
"""

import asyncio
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import set_json_loads

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import describe_host
from alert_delivery.delivery import store
from alert_delivery.delivery.body import loads_utf8, render_row, serialise
from alert_delivery.delivery.loop import run as run_loop
from alert_delivery.delivery.outcome import Attempt, Verdict, account, decide
from alert_delivery.delivery.registry import HTTP_KINDS, decrypted_target
from alert_delivery.delivery.retry import RetryPolicy
from alert_delivery.delivery.secrets import Vault, load_vault
from alert_delivery.delivery.sender import Sender, SenderConfig
from alert_delivery.delivery.signing import webhook_headers
from alert_delivery.delivery.smtp import send_email
from alert_delivery.delivery.ssrf import announce_allow_list, check_url, needs_dns
from alert_delivery.delivery.store import Claimed, HealthDelta, Outcome

__all__ = ["BatchResult", "Engine", "EngineConfig", "decide", "deliver_batch", "drain", "serialise"]
from alert_delivery.errors import AlertDeliveryError, DatabaseUnavailable

RENDER_SLICE = 64
"""Rows rendered between two yields to the event loop."""


@dataclass(frozen=True)
class EngineConfig:
    sender: SenderConfig = field(default_factory=SenderConfig)
    lease_s: float = 120.0
    retry_after_cap_s: float = 3600.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 60.0
    smtp_timeout_s: float = 10.0


@dataclass
class BatchResult:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    deferred: int = 0
    released: int = 0
    first_id: int | None = None
    last_id: int | None = None

    def add(self, other: "BatchResult") -> None:
        for name in ("claimed", "delivered", "retrying", "dead", "deferred", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        ids = [i for i in (self.first_id, self.last_id, other.first_id, other.last_id) if i]
        if ids:
            self.first_id, self.last_id = min(ids), max(ids)


class Engine:
    """Delivers claimed rows. Create with :meth:`open` inside a running loop."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        sender: Sender,
        vault: Vault,
        settings: Settings,
        config: EngineConfig,
        *,
        worker_id: str,
        run_id: str | None = None,
    ) -> None:
        self.conn = conn
        # Claims get their own connection so a new row never queues behind a batch's outcome
        # statement (which waits for its WAL flush): that is the worker's latency path.
        self.claim_conn = conn
        self.sender = sender
        self.vault = vault
        self.settings = settings
        self.config = config
        self.worker_id = worker_id
        self.run_id = run_id
        self.stopping = False
        # Attempts run on a fixed set of lanes (config.sender.concurrency of them) that pull rows
        # from one queue shared by every batch in flight: a task and a semaphore wait per row
        # cost about a tenth of the engine's time per delivery.
        self._work: deque[tuple[Claimed, _Batch, int]] = deque()
        self._has_work = asyncio.Event()
        self._lanes: list[asyncio.Task[None]] = []
        self._checked: set[str] = set()
        self._targets: dict[tuple[str | None, str | None], tuple[str | None, list[str]]] = {}
        self._policies: dict[tuple[int, ...] | None, RetryPolicy] = {}

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
        conn = await connect_async(db_url)
        claim_conn = await connect_async(db_url)
        set_json_loads(loads_utf8, claim_conn)
        sender = Sender(config.sender, settings.allowed_targets)
        engine = cls(conn, sender, vault, settings, config, worker_id=worker_id, run_id=run_id)
        engine.claim_conn = claim_conn
        await store.prepare(
            claim_conn,
            conn,
            worker_id=worker_id,
            lease_s=config.lease_s,
            cooldown_s=config.breaker_cooldown_s,
        )
        return engine

    async def close(self) -> None:
        for lane in self._lanes:
            lane.cancel()
        await asyncio.gather(*self._lanes, return_exceptions=True)
        self._lanes.clear()
        await self.sender.close()
        await self.conn.close()
        if self.claim_conn is not self.conn:
            await self.claim_conn.close()

    async def claim(self, limit: int, *, min_age_s: float = 0.0) -> list[Claimed]:
        """Lease due rows and render the new ones; their bodies are stored when this returns."""
        rows = await store.claim(
            self.claim_conn,
            limit=limit,
            worker_id=self.worker_id,
            lease_s=self.config.lease_s,
            min_age_s=min_age_s,
            cooldown_s=self.config.breaker_cooldown_s,
        )
        fresh = [row for row in rows if row.messages is not None]
        if fresh:
            await self._render(fresh)
        return rows

    async def _render(self, rows: list[Claimed]) -> None:
        """Render new rows and store their bodies in one statement before any is sent."""
        at = datetime.now(UTC)
        base = self.settings.runbook_url
        ids: list[int] = []
        bodies: list[str] = []
        for i, row in enumerate(rows, 1):
            body = render_row(row, at, base)
            if body is not None:
                ids.append(row.delivery_id)
                bodies.append(body)
            if not i % RENDER_SLICE:
                await asyncio.sleep(0)  # let the lanes read responses between slices
        if not ids:
            return
        if await store.write_bodies(self.claim_conn, ids, bodies) < len(ids):
            # Another claimer stored a body first (it held an expired lease of the row):
            # send what is stored, so every attempt of the row carries the same bytes.
            stored = await store.stored_bodies(self.claim_conn, ids)
            for row in rows:
                text = stored.get(row.delivery_id)
                if text is not None and text != row.body:
                    row.body = text
                    if row.kind in store.DICT_KINDS:
                        row.payload = loads_utf8(text)

    async def process(self, rows: Sequence[Claimed]) -> BatchResult:
        """Deliver leased rows and record every outcome; returns the counts."""
        result = BatchResult(claimed=len(rows))
        if not rows:
            return result
        result.first_id, result.last_id = rows[0].delivery_id, rows[-1].delivery_id
        outcomes: list[Outcome] = []
        sendable = self._drop_disabled(rows, outcomes)
        granted = self._permit(sendable, outcomes)
        attempts = await self._attempt_all(granted)
        await self._deliver_inboxes(granted, attempts)
        health: dict[int, HealthDelta] = defaultdict(HealthDelta)
        gone: dict[int, str] = {}
        for row, attempt in zip(granted, attempts, strict=True):
            if attempt is None:
                outcomes.append(
                    Outcome(
                        row.delivery_id, row.webhook_id, "pending", 0.0, "released", counted=False
                    )
                )
                continue
            outcomes.append(decide(row, attempt, self._policy(row.retry_schedule_s)))
            account(health[row.webhook_id], attempt)
            if attempt.verdict is Verdict.GONE:
                gone[row.webhook_id] = attempt.error or "HTTP 410 Gone"
        # One autocommit statement: the worker shares this connection between concurrent
        # batches, so an explicit transaction here could swallow another batch's claim.
        await store.record(
            self.conn,
            outcomes,
            health,
            worker_id=self.worker_id,
            run_id=self.run_id,
            breaker_threshold=self.config.breaker_threshold,
        )
        for webhook_id, reason in gone.items():
            await store.endpoint_gone(
                self.conn, webhook_id, reason=reason, worker_id=self.worker_id, run_id=self.run_id
            )
        for o in outcomes:
            if o.log_event == "delivered":
                result.delivered += 1
            elif o.log_event == "retry_scheduled":
                result.retrying += 1
            elif o.log_event == "dead_lettered":
                result.dead += 1
            elif o.log_event == "deferred":
                result.deferred += 1
            else:
                result.released += 1
        return result

    def _drop_disabled(self, rows: Sequence[Claimed], outcomes: list[Outcome]) -> list[Claimed]:
        """Rows of a disabled webhook and rows that cannot be rendered are dead-lettered."""
        keep = []
        for row in rows:
            if row.active and row.error is None:
                keep.append(row)
            else:
                outcomes.append(
                    Outcome(
                        row.delivery_id,
                        row.webhook_id,
                        "dead",
                        0.0,
                        "dead_lettered",
                        counted=False,
                        error=row.error or "webhook disabled",
                    )
                )
        return keep

    def _permit(self, rows: list[Claimed], outcomes: list[Outcome]) -> list[Claimed]:
        """Apply the claim's breaker/bucket permits: rows over them are deferred, never dropped."""
        by_webhook: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            by_webhook[row.webhook_id].append(row)
        granted: list[Claimed] = []
        for webhook_id, group in by_webhook.items():
            allowed, wait, rate = group[0].granted, group[0].wait_s, group[0].rate_limit_per_s
            granted.extend(group[:allowed])
            for i, row in enumerate(group[allowed:]):
                outcomes.append(
                    Outcome(
                        row.delivery_id,
                        webhook_id,
                        "pending",
                        wait + i / rate,
                        "deferred",
                        counted=False,
                    )
                )
        granted.sort(key=lambda r: r.delivery_id)
        return granted

    def _check(self, url: str) -> None:
        """The SSRF check before every attempt; a verdict that needed no DNS is remembered,
        because re-parsing the same string gives the same answer (DNS is re-checked anyway,
        at connect time, by the resolver)."""
        if url in self._checked:
            return
        check_url(url, self.settings.allowed_targets)
        if not needs_dns(url):
            self._checked.add(url)

    def _target(self, row: Claimed) -> tuple[str | None, list[str]]:
        key = (row.url_token, row.secret_token)
        found = self._targets.get(key)
        if found is None:
            found = decrypted_target(self.vault, row.url_token, row.secret_token)
            self._targets[key] = found
        return found

    def _policy(self, schedule: list[int] | None) -> RetryPolicy:
        key = tuple(schedule) if schedule else None
        policy = self._policies.get(key)
        if policy is None:
            policy = RetryPolicy.for_webhook(
                schedule, retry_after_cap_s=self.config.retry_after_cap_s
            )
            self._policies[key] = policy
        return policy

    async def _attempt_all(self, rows: Sequence[Claimed]) -> list[Attempt | None]:
        """One attempt per row, at most ``concurrency`` at once across every batch in flight;
        None for a row that shutdown reached first (it is released, not tried)."""
        batch = _Batch(len(rows))
        for i, row in enumerate(rows):
            if row.kind == "inbox":
                batch.done(i, Attempt(Verdict.DELIVERED, latency_ms=0.0))
            else:
                self._work.append((row, batch, i))
        if self._work:
            if not self._lanes:
                self._lanes = [
                    asyncio.create_task(self._lane()) for _ in range(self.config.sender.concurrency)
                ]
            self._has_work.set()
        try:
            await batch.finished
        except asyncio.CancelledError:
            batch.abandoned = True  # lanes skip its rows: a cancelled batch sends nothing more
            raise
        return batch.attempts

    async def _lane(self) -> None:
        work = self._work
        post = self.sender.post
        while True:
            if not work:
                self._has_work.clear()
                await self._has_work.wait()
                continue
            row, batch, i = work.popleft()
            if batch.abandoned:
                continue
            try:
                if self.stopping:
                    batch.done(i, None)
                    continue
                if row.kind == "email":
                    batch.done(i, await self._email(row))
                    continue
                # HTTP rows are prepared synchronously and posted from here: one coroutine
                # level less on every resume of the request.
                request = self._prepare(row)
                batch.done(i, request if isinstance(request, Attempt) else await post(*request))
            except Exception as exc:  # a bug, not a delivery outcome: fail the batch, keep the lane
                batch.fail(exc)

    def _prepare(self, row: Claimed) -> tuple[str, bytes, dict[str, str]] | Attempt:
        """URL, body and signed headers of an HTTP row, or the Attempt when it cannot be sent."""
        try:
            url, secrets = self._target(row)
            if row.kind not in HTTP_KINDS or not url:
                return Attempt(Verdict.PERMANENT, error=f"cannot deliver kind {row.kind}")
            self._check(url)
            body = serialise(row, secrets)
        except AlertDeliveryError as exc:
            return Attempt(Verdict.PERMANENT, error=str(exc))
        # Signed at send time: a row that waited in the lanes' queue still carries a fresh
        # timestamp, well inside a receiver's tolerance.
        return url, body, webhook_headers(row.message_id, body, secrets)

    async def _email(self, row: Claimed) -> Attempt:
        try:
            url, _ = self._target(row)
        except AlertDeliveryError as exc:
            return Attempt(Verdict.PERMANENT, error=str(exc))
        return await asyncio.to_thread(
            send_email,
            url or "",
            row.config,
            row.payload,
            row.message_id,
            allowed=self.settings.allowed_targets,
            timeout_s=self.config.smtp_timeout_s,
        )

    async def _deliver_inboxes(
        self, rows: Sequence[Claimed], attempts: Sequence[Attempt | None]
    ) -> None:
        inbox: list[tuple[str, int | None, int, str, str, str]] = []
        for row in rows:
            if row.kind != "inbox":
                continue
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


class _Batch:
    """The attempts of one ``process`` call, filled in by the lanes in completion order."""

    __slots__ = ("abandoned", "attempts", "finished", "remaining")

    def __init__(self, size: int) -> None:
        self.attempts: list[Attempt | None] = [None] * size
        self.remaining = size
        self.abandoned = False
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not size:
            self.finished.set_result(None)

    def done(self, index: int, attempt: Attempt | None) -> None:
        self.attempts[index] = attempt
        self.remaining -= 1
        if not self.remaining and not self.finished.done():
            self.finished.set_result(None)

    def fail(self, exc: Exception) -> None:
        # The batch's rows stay leased and come back when the lease ends: nothing is lost.
        if not self.finished.done():
            self.finished.set_exception(exc)


async def connect_async(db_url: str) -> psycopg.AsyncConnection[Any]:
    """An autocommit async connection, or ``DatabaseUnavailable`` naming host and cause."""
    try:
        return await psycopg.AsyncConnection.connect(db_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseUnavailable(describe_host(db_url), cause) from None


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
