"""The delivery engine: claim -> render -> admit -> sign -> send -> outcome + log, two drivers.

The async :class:`Engine` is what the worker runs; :func:`deliver_batch` is the synchronous entry
point for Dagster runs, the CLI and the demo. No lock is held while HTTP is in flight: rows are
leased, and outcomes are recorded in small groups (at most ``GROUP_ROWS`` rows or ``GROUP_WAIT_S``
after the group's first, whichever comes first) by the worker and Dagster runs alike, so a crash
re-sends at most what was on the wire or waiting for its group.

A row's body is rendered once, in Python, when the engine first claims it: the claim returns the
alert messages of rows without a body and the engine renders them (``alert_delivery.channels``).
The body is stored with the row's first outcome, in the statement that rewrites the row anyway
(storing it in a statement of its own, before the send, cost a quarter of the throughput), so
every attempt after a recorded outcome signs and sends exactly the stored bytes. A crash between
the send and the record leaves no body: the row comes back by lease and is rendered again, so
that re-send may differ in its bytes (a timestamp) but keeps the same ``webhook-id``, which is
what receivers deduplicate by. A row whose rendering fails is dead-lettered, the others go on.

Before every attempt the lane asks the process's breakers (``breaker.Breakers``): after the
threshold of consecutive failures or a 410 no new request starts to that webhook, a 429 holds it
until ``Retry-After``; held rows are deferred (counted in ``webhook_health``, not logged one by
one). A row or webhook that makes the engine fail is set aside with its reason: a row whose
attempt raised is dead-lettered, a webhook whose rows make the claim fail is paused.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import set_json_loads

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import connection_lost, describe_host
from alert_delivery.delivery import metrics, store
from alert_delivery.delivery.body import ERROR_MAX, loads_utf8, render_row, serialise
from alert_delivery.delivery.breaker import Breakers
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

log = logging.getLogger("alert_delivery.delivery")

RENDER_SLICE = 64
"""Rows rendered between two yields to the event loop."""
GROUP_ROWS = 50
GROUP_WAIT_S = 0.020
"""Outcomes are recorded in groups of at most GROUP_ROWS rows, the first waiting at most
GROUP_WAIT_S: what a crash can re-send beyond the requests on the wire."""
HEALTH_EVERY_S = 0.25
"""Counters of groups that only succeeded are written at most this often (merged); a failure,
a 429, a probe or a deferral is written with its own group, so the shared breaker never waits."""
PAUSED_RECHECK_S = 60.0
"""How long rows of a paused webhook wait before they are looked at again."""


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
    throttled: int = 0
    first_id: int | None = None
    last_id: int | None = None
    dead_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Dead-lettered rows by (webhook name, reason); reasons are redacted (never a URL or
    secret) and cut to one line."""

    def add(self, other: "BatchResult") -> None:
        for name in ("claimed", "delivered", "retrying", "dead", "deferred", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.throttled += other.throttled
        self.dead_reasons.update(other.dead_reasons)
        ids = [i for i in (self.first_id, self.last_id, other.first_id, other.last_id) if i]
        if ids:
            self.first_id, self.last_id = min(ids), max(ids)

    def count(self, row: Claimed, outcome: Outcome) -> None:
        event = outcome.log_event
        if event == "delivered":
            self.delivered += 1
        elif event == "retry_scheduled":
            self.retrying += 1
        elif event == "dead_lettered":
            self.dead += 1
            reason = (outcome.error or "dead").splitlines()[0][:ERROR_MAX]
            self.dead_reasons[(row.name or f"webhook {row.webhook_id}", reason)] += 1
        elif event == "deferred":
            self.deferred += 1
        elif event == "throttled":
            self.throttled += 1
        else:
            self.released += 1


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
        # Claims get their own connection so a new row never queues behind a group's outcome
        # statement (which waits for its WAL flush): that is the worker's latency path.
        self.claim_conn = conn
        self.sender = sender
        self.vault = vault
        self.settings = settings
        self.config = config
        self.worker_id = worker_id
        self.run_id = run_id
        self.stopping = False
        self.breakers = Breakers(
            config.breaker_threshold, config.breaker_cooldown_s, config.retry_after_cap_s
        )
        self.soonest: float | None = None
        """Monotonic time the earliest row this engine deferred or throttled is due again, so
        the worker can claim it then rather than at its next poll."""
        # Attempts run on a fixed set of lanes (config.sender.concurrency of them) that pull rows
        # from one queue shared by every batch in flight: a task and a semaphore wait per row
        # cost about a tenth of the engine's time per delivery.
        self._work: deque[tuple[Claimed, _Batch]] = deque()
        self._has_work = asyncio.Event()
        self._lanes: list[asyncio.Task[None]] = []
        self._recorder = _Recorder(self)
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
        claim_conn: psycopg.AsyncConnection[Any] | None = None
        try:
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
            # Nothing is left open when the second connect or the planning fails.
            for c in (claim_conn, conn):
                if c is not None:
                    try:
                        await c.close()
                    except Exception as exc:  # closing what failed must not hide why
                        log.debug("closing a connection failed: %s", type(exc).__name__)
            raise
        sender = Sender(config.sender, settings.allowed_targets)
        engine = cls(conn, sender, vault, settings, config, worker_id=worker_id, run_id=run_id)
        engine.claim_conn = claim_conn
        return engine

    async def close(self) -> None:
        for lane in self._lanes:
            lane.cancel()
        await asyncio.gather(*self._lanes, return_exceptions=True)
        self._lanes.clear()
        await self._recorder.close()
        await self.sender.close()
        await self.conn.close()
        if self.claim_conn is not self.conn:
            await self.claim_conn.close()

    async def claim(self, limit: int, *, min_age_s: float = 0.0) -> list[Claimed]:
        """Lease due rows and render the new ones (their bodies are stored with their first
        outcome). A claim that fails on some webhook's rows pauses that webhook and claims again."""
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
        fresh = [row for row in rows if row.messages is not None]
        if fresh:
            await self._render(fresh)
        return rows

    async def _claim(self, limit: int, min_age_s: float, only: int | None = None) -> list[Claimed]:
        return await store.claim(
            self.claim_conn,
            limit=limit,
            worker_id=self.worker_id,
            lease_s=self.config.lease_s,
            min_age_s=min_age_s,
            cooldown_s=self.config.breaker_cooldown_s,
            only=only,
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

    async def _render(self, rows: list[Claimed]) -> None:
        """Render new rows in memory; the bodies are stored with the rows' first outcomes."""
        at = datetime.now(UTC)
        base = self.settings.runbook_url
        for i, row in enumerate(rows, 1):
            if render_row(row, at, base) is not None:
                row.rendered = True
            if not i % RENDER_SLICE:
                await asyncio.sleep(0)  # let the lanes read responses between slices

    async def process(self, rows: Sequence[Claimed]) -> BatchResult:
        """Deliver leased rows and record every outcome (in groups); returns the counts."""
        batch = _Batch(len(rows))
        batch.result.claimed = len(rows)
        if not rows:
            return batch.result
        batch.result.first_id, batch.result.last_id = rows[0].delivery_id, rows[-1].delivery_id
        sendable = self._set_aside(rows, batch)
        granted = self._permit(sendable, batch)
        inbox = [row for row in granted if row.kind == "inbox"]
        if inbox:
            await self._deliver_inboxes(inbox)
        for row in granted:
            if row.kind == "inbox":
                self._done(row, batch, Attempt(Verdict.DELIVERED, latency_ms=0.0))
            else:
                self._work.append((row, batch))
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
        return batch.result

    def _outcome(
        self, row: Claimed, batch: "_Batch", outcome: Outcome, attempt: Attempt | None
    ) -> None:
        if row.rendered and not (outcome.status == "pending" and not outcome.counted):
            outcome.body = row.body  # sent (or dead): the bytes every later attempt sends
        if outcome.status == "pending" and outcome.log_event in ("deferred", "throttled"):
            due = time.monotonic() + outcome.delay_s
            if self.soonest is None or due < self.soonest:
                self.soonest = due
        self._recorder.add(row, batch, outcome, attempt)

    def _defer(
        self, row: Claimed, batch: "_Batch", delay_s: float, error: str | None = None
    ) -> None:
        self._outcome(
            row,
            batch,
            Outcome(
                row.delivery_id, row.webhook_id, "pending", delay_s, "deferred", False, error=error
            ),
            None,
        )

    def _dead(self, row: Claimed, batch: "_Batch", error: str) -> None:
        self._outcome(
            row,
            batch,
            Outcome(
                row.delivery_id, row.webhook_id, "dead", 0.0, "dead_lettered", False, error=error
            ),
            None,
        )

    def _done(self, row: Claimed, batch: "_Batch", attempt: Attempt) -> None:
        self.breakers.finished(row.webhook_id, attempt, row.probe)
        if row.kind != "inbox":
            metrics.observe_attempt(row.kind, attempt.verdict.value, attempt.latency_ms)
        self._outcome(row, batch, decide(row, attempt, self._policy(row.retry_schedule_s)), attempt)

    def _set_aside(self, rows: Sequence[Claimed], batch: "_Batch") -> list[Claimed]:
        """Rows of a disabled webhook and rows that cannot be rendered are dead-lettered; rows of
        a paused webhook wait, with the reason on the row."""
        keep = []
        for row in rows:
            if row.active and row.error is None:
                keep.append(row)
            elif row.paused is not None and row.error is None:
                self._defer(row, batch, PAUSED_RECHECK_S, row.paused)
            else:
                self._dead(row, batch, row.error or "webhook disabled")
        return keep

    def _permit(self, rows: list[Claimed], batch: "_Batch") -> list[Claimed]:
        """Apply the claim's breaker/bucket permits: rows over them are deferred, never dropped."""
        by_webhook: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            by_webhook[row.webhook_id].append(row)
        granted: list[Claimed] = []
        for group in by_webhook.values():
            allowed, wait, rate = group[0].granted, group[0].wait_s, group[0].rate_limit_per_s
            granted.extend(group[:allowed])
            for i, row in enumerate(group[allowed:]):
                self._defer(row, batch, wait + i / rate)
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

    async def _lane(self) -> None:
        work = self._work
        post = self.sender.post
        admit = self.breakers.admit
        while True:
            if not work:
                self._has_work.clear()
                await self._has_work.wait()
                continue
            row, batch = work.popleft()
            if batch.abandoned:
                continue
            try:
                if self.stopping:
                    self._outcome(
                        row,
                        batch,
                        Outcome(row.delivery_id, row.webhook_id, "pending", 0.0, "released", False),
                        None,
                    )
                    continue
                # Per attempt, not per batch: a breaker that opened (or a 410 or a 429 that
                # arrived) while this row waited in the queue holds it back now.
                hold = admit(row.webhook_id, row.probe)
                if hold is not None:
                    if hold.gone:
                        self._dead(row, batch, hold.reason)
                    else:
                        self._defer(row, batch, hold.delay_s)
                    continue
                with metrics.attempt_in_flight(row.kind):
                    if row.kind == "email":
                        attempt = await self._email(row)
                    else:
                        # HTTP rows are prepared synchronously and posted from here: one
                        # coroutine level less on every resume of the request.
                        request = self._prepare(row)
                        attempt = request if isinstance(request, Attempt) else await post(*request)
                self._done(row, batch, attempt)
            except Exception as exc:
                # A bug or bad data in this row, not a delivery outcome: the row is set aside
                # with the reason (no detail of the data, which may hold a secret), others go on.
                log.exception("delivery %d set aside", row.delivery_id)
                self._dead(row, batch, f"engine error: {type(exc).__name__}")

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


class _Batch:
    """The rows of one ``process`` call: done when every outcome of it is recorded."""

    __slots__ = ("abandoned", "finished", "remaining", "result")

    def __init__(self, size: int) -> None:
        self.result = BatchResult()
        self.remaining = size
        self.abandoned = False
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not size:
            self.finished.set_result(None)

    def recorded(self, row: Claimed, outcome: Outcome) -> None:
        self.result.count(row, outcome)
        self.remaining -= 1
        if not self.remaining and not self.finished.done():
            self.finished.set_result(None)

    def fail(self, exc: BaseException) -> None:
        # The rows stay leased and come back when the lease ends: nothing is lost.
        if not self.finished.done():
            self.finished.set_exception(exc)


_Entry = tuple[Claimed, _Batch, Outcome, Attempt | None, float]


class _Recorder:
    """Writes outcomes in groups of at most GROUP_ROWS rows or GROUP_WAIT_S, one group at a time
    on the engine's outcome connection, and feeds the breakers what webhook_health then says."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pending: list[_Entry] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.health: dict[int, HealthDelta] = {}
        """Counters not written yet (groups that only succeeded)."""
        self.health_at = time.monotonic()

    def add(self, row: Claimed, batch: _Batch, outcome: Outcome, attempt: Attempt | None) -> None:
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
            engine = self.engine
            try:
                await store.record_health(
                    engine.conn,
                    health,
                    breaker_threshold=engine.config.breaker_threshold,
                    cooldown_s=engine.config.breaker_cooldown_s,
                    worker_id=engine.worker_id,
                )
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
        engine = self.engine
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
            engine.conn,
            [entry[2] for entry in group],
            {},
            worker_id=engine.worker_id,
            run_id=engine.run_id,
            breaker_threshold=engine.config.breaker_threshold,
        )
        for b in await self._health(health):
            engine.breakers.shared(b.webhook_id, b.state, b.failures, b.open_for_s)
        for webhook_id, reason in gone.items():
            await store.endpoint_gone(
                engine.conn,
                webhook_id,
                reason=reason,
                worker_id=engine.worker_id,
                run_id=engine.run_id,
            )
        metrics.count_outcomes((entry[2].log_event, entry[0].kind) for entry in group)
        for row, batch, outcome, _attempt, _at in group:
            batch.recorded(row, outcome)

    async def _health(self, health: dict[int, HealthDelta]) -> list[store.SharedBreaker]:
        """Counters and breakers after the outcomes are safe; a webhook whose health row cannot
        be written (whatever the reason) loses these counters, never the others theirs."""
        engine = self.engine

        async def write(part: dict[int, HealthDelta]) -> list[store.SharedBreaker]:
            return await store.record_health(
                engine.conn,
                part,
                breaker_threshold=engine.config.breaker_threshold,
                cooldown_s=engine.config.breaker_cooldown_s,
                worker_id=engine.worker_id,
            )

        if not health:
            return []
        try:
            return await write(health)
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
