"""One attempt's result, how an HTTP status maps onto it, and what it does to the row."""

from dataclasses import dataclass
from enum import Enum

from alert_delivery.delivery.retry import RetryPolicy, next_delay
from alert_delivery.delivery.store import Claimed, HealthDelta, Outcome


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"
    GONE = "gone"
    THROTTLED = "throttled"
    """429: the receiver asks us to slow down. Not a failure: the breaker does not count it."""


@dataclass(slots=True)
class Attempt:
    verdict: Verdict
    status: int | None = None
    error: str | None = None
    """Redacted: never a URL, a secret or a response body."""
    retry_after_s: float | None = None
    latency_ms: float | None = None


def classify_status(status: int) -> Verdict:
    """2xx delivered; 429 throttled; 408, 5xx retry; 410 gone; 3xx (never followed) and other
    4xx final."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 429:
        return Verdict.THROTTLED
    if status == 408 or status >= 500:
        return Verdict.RETRY
    if status == 410:
        return Verdict.GONE
    return Verdict.PERMANENT


def status_error(status: int) -> str | None:
    verdict = classify_status(status)
    if verdict is Verdict.DELIVERED:
        return None
    if verdict is Verdict.GONE:
        return "HTTP 410 Gone: the receiver asked us to stop; webhook disabled"
    if verdict is Verdict.THROTTLED:
        return "HTTP 429: throttled by the receiver"
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed"
    return f"HTTP {status}"


def throttle_delay(policy: RetryPolicy, attempt: Attempt, attempts: int) -> float:
    """How long a 429 holds its webhook: ``Retry-After`` (capped), else the retry schedule's
    step (its last one once the schedule is used up). Throttling never dead-letters a row."""
    if attempt.retry_after_s is not None:
        return max(0.0, min(attempt.retry_after_s, policy.retry_after_cap_s))
    step = min(max(attempts, 1), len(policy.schedule_s))
    return next_delay(policy, step) or 1.0


def decide(row: Claimed, attempt: Attempt, policy: RetryPolicy) -> Outcome:
    """Pure: the queue status, delay and log event that one attempt leads to."""
    status, delay, event, error = "dead", 0.0, "dead_lettered", attempt.error
    if attempt.verdict is Verdict.DELIVERED:
        status, event = "delivered", "delivered"
    elif attempt.verdict is Verdict.THROTTLED:
        status, event = "pending", "throttled"
        delay = throttle_delay(policy, attempt, row.attempts + 1)
    elif attempt.verdict is Verdict.RETRY:
        wait = next_delay(policy, row.attempts + 1, retry_after_s=attempt.retry_after_s)
        if wait is not None:
            status, delay, event = "pending", wait, "retry_scheduled"
        else:
            error = f"{attempt.error or 'failed'}; retries exhausted"
    return Outcome(
        row.delivery_id,
        row.webhook_id,
        status,
        delay,
        event,
        counted=True,
        http_status=attempt.status,
        error=error,
        latency_ms=attempt.latency_ms,
    )


def account(delta: HealthDelta, attempt: Attempt) -> None:
    """Breaker bookkeeping in completion order: only retryable failures count against it; a 429
    neither counts nor resets (the webhook's throttle is set apart, see ``Breakers``)."""
    if attempt.latency_ms is not None and attempt.status is not None:
        delta.latencies.append(attempt.latency_ms)
    if attempt.verdict is Verdict.DELIVERED:
        delta.ok += 1
        delta.reset, delta.trailing = True, 0
        return
    if attempt.verdict is Verdict.THROTTLED:
        delta.throttled += 1
        return
    delta.failed += 1
    delta.error = attempt.error
    if attempt.verdict is Verdict.RETRY:
        delta.trailing += 1
