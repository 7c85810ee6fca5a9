"""Per-token token buckets (one second of burst), per server process."""

import math
import time


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}

    def take(self, key: int, rate_per_s: float, *, now: float | None = None) -> float | None:
        """None if the request may go; else the seconds until one more would be allowed."""
        now = time.monotonic() if now is None else now
        burst = max(1.0, rate_per_s)
        level, at = self._buckets.get(key, (burst, now))
        level = min(burst, level + (now - at) * rate_per_s)
        if level >= 1.0:
            self._buckets[key] = (level - 1.0, now)
            return None
        self._buckets[key] = (level, now)
        return (1.0 - level) / rate_per_s


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
