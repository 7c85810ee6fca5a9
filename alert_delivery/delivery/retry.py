"""Retry policy: frozen data and a pure function. Retry state lives in the queue row."""

import email.utils
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_SCHEDULE_S: tuple[float, ...] = (5, 30, 120, 300, 1800, 7200, 43200, 86400)


@dataclass(frozen=True)
class RetryPolicy:
    """``schedule_s[i]`` is the wait after failed attempt ``i + 1``; past its end: dead letter."""

    schedule_s: tuple[float, ...] = DEFAULT_SCHEDULE_S
    jitter: float = 0.2
    retry_after_cap_s: float = 3600.0

    @classmethod
    def for_webhook(
        cls, override: Sequence[int] | None, *, retry_after_cap_s: float = 3600.0
    ) -> "RetryPolicy":
        schedule = tuple(float(s) for s in override) if override else DEFAULT_SCHEDULE_S
        return cls(schedule_s=schedule, retry_after_cap_s=retry_after_cap_s)


def next_delay(
    policy: RetryPolicy,
    attempts: int,
    *,
    retry_after_s: float | None = None,
    rand: float | None = None,
) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones, or None: dead-letter.

    ``rand`` in [0, 1) picks the jitter (``random.random()`` when None). ``Retry-After`` wins when
    it asks for longer than the schedule, up to ``retry_after_cap_s``.
    """
    if attempts < 1 or attempts > len(policy.schedule_s):
        return None
    base = policy.schedule_s[attempts - 1]
    r = random.random() if rand is None else rand
    delay = base * (1.0 + policy.jitter * (2.0 * r - 1.0))
    if retry_after_s is not None and retry_after_s > 0:
        delay = max(delay, min(retry_after_s, policy.retry_after_cap_s))
    return max(0.0, delay)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
