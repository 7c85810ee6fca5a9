"""What one ``Engine.process`` call (a batch of claimed rows) is waiting for, and what it did."""

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from alert_delivery.delivery.body import ERROR_MAX
from alert_delivery.delivery.store import Claimed, Outcome


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


class Batch:
    """The rows of one ``process`` call: done when every outcome of it is recorded."""

    __slots__ = ("abandoned", "finished", "remaining", "result")

    def __init__(self, rows: Sequence[Claimed]) -> None:
        self.result = BatchResult(claimed=len(rows))
        if rows:
            self.result.first_id, self.result.last_id = rows[0].delivery_id, rows[-1].delivery_id
        self.remaining = len(rows)
        self.abandoned = False
        """Cancelled: the lanes skip its rows, a cancelled batch sends nothing more."""
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not rows:
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
