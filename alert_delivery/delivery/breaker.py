"""The per-process side of the circuit breaker and the 429 throttle, checked before every attempt.

The shared state lives in ``webhook_health`` (every process's claims and outcome groups read and
write it), but a group is recorded up to 20 ms after its attempts finish and a claim hands out a
batch at a time: acting on the shared state alone, a process kept sending a whole in-flight window
to an endpoint that was failing. So every finished attempt also feeds this in-memory state, and
each lane asks it before it starts a request:

- after ``threshold`` consecutive retryable failures (or the first 410) no new request starts to
  that webhook: the rows wait (deferred) until the cooldown ends;
- while the breaker is open only the row the claim leased as the shared probe is sent (exactly one
  probe across processes: the probe is leased in ``webhook_health``);
- a 429 holds the webhook until its ``Retry-After`` (capped) and counts for nothing else.

What other processes learned comes in through the claim (the shared breaker after its permit) and
through each recorded group (the shared breaker after the group), so across processes at most the
threshold plus the requests already on the wire (and those started within one group's recording)
reach a failing endpoint.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from alert_delivery.delivery.outcome import Attempt, Verdict

MIN_DEFER_S = 1.0
"""The shortest wait of a row held back by an open breaker: never a claim-and-defer spin."""


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float = 0.0
    """Monotonic time the local breaker half-opens (0: closed)."""
    probing: bool = False
    throttled_until: float = 0.0
    gone: str | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a row must not be sent now: ``gone`` rows are dead-lettered, the others deferred."""

    delay_s: float
    reason: str
    gone: bool = False


class Breakers:
    def __init__(
        self,
        threshold: int,
        cooldown_s: float,
        retry_after_cap_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(1, threshold)
        self.cooldown_s = cooldown_s
        self.retry_after_cap_s = retry_after_cap_s
        self.clock = clock
        self._states: dict[int, _State] = {}

    def admit(self, webhook_id: int, probe: bool) -> Hold | None:
        """None: send now. Healthy webhooks have no state: one dict lookup per attempt."""
        s = self._states.get(webhook_id)
        if s is None:
            return None
        if s.gone is not None:
            return Hold(0.0, s.gone, gone=True)
        now = self.clock()
        if now < s.throttled_until:
            return Hold(s.throttled_until - now, "throttled (429)")
        if s.failures >= self.threshold:
            if probe and not s.probing:
                s.probing = True  # the one probe the claim leased in webhook_health
                return None
            return Hold(max(s.open_until - now, MIN_DEFER_S), "breaker open")
        return None

    def finished(self, webhook_id: int, attempt: Attempt, probe: bool) -> None:
        """Feed one finished attempt, in completion order."""
        verdict = attempt.verdict
        s = self._states.get(webhook_id)
        if verdict is Verdict.DELIVERED:
            if s is not None and s.throttled_until <= self.clock():
                del self._states[webhook_id]
            elif s is not None:
                s.failures, s.open_until, s.probing = 0, 0.0, False
            return
        if verdict is Verdict.PERMANENT:
            return  # the row's own problem (a 4xx, a refused target): says nothing of the endpoint
        if s is None:
            s = self._states[webhook_id] = _State()
        now = self.clock()
        if verdict is Verdict.THROTTLED:
            wait = attempt.retry_after_s if attempt.retry_after_s is not None else 1.0
            s.throttled_until = max(s.throttled_until, now + min(wait, self.retry_after_cap_s))
            if probe:
                s.probing = False
            return
        if verdict is Verdict.GONE:
            s.gone = attempt.error or "HTTP 410 Gone: webhook disabled"
            return
        s.failures += 1
        if s.failures == self.threshold or (probe and s.failures >= self.threshold):
            s.open_until = now + self.cooldown_s
        if probe:
            s.probing = False

    def shared(self, webhook_id: int, state: str, failures: int, open_for_s: float) -> None:
        """What ``webhook_health`` says now (after a claim's permit or a recorded group)."""
        s = self._states.get(webhook_id)
        now = self.clock()
        if state == "closed":
            if s is not None and s.gone is None and s.failures >= self.threshold:
                if now >= s.open_until and not s.probing:
                    # Another process's probe closed it (or an operator reset it).
                    s.failures, s.open_until = failures, 0.0
            elif failures > 0:
                s = s or self._states.setdefault(webhook_id, _State())
                s.failures = max(s.failures, failures)
            return
        s = s or self._states.setdefault(webhook_id, _State())
        if s.failures < self.threshold:
            s.failures = self.threshold
            s.open_until = max(s.open_until, now + open_for_s)
