"""The result of one attempt, and how an HTTP status maps onto it."""

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"
    GONE = "gone"


@dataclass(frozen=True)
class Attempt:
    verdict: Verdict
    status: int | None = None
    error: str | None = None
    """Redacted: never a URL, a secret or a response body."""
    retry_after_s: float | None = None
    latency_ms: float | None = None


def classify_status(status: int) -> Verdict:
    """2xx delivered; 408, 429, 5xx retry; 410 gone; 3xx (never followed) and other 4xx final."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in (408, 429) or status >= 500:
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
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed"
    return f"HTTP {status}"
