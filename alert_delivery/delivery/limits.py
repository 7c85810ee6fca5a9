"""Bounds of every numeric webhook setting, checked in Python with the same limits as 0009.

NaN and Infinity pass ``> 0`` in PostgreSQL and in Python alike, and one webhook whose rate is
NaN made every claim fail, stopping delivery to all the others: a value is accepted only when it
is finite and inside its range.
"""

import math
from collections.abc import Sequence

from alert_delivery.errors import InvalidInput

# Below one request per 1000 s the claim's wait (1 / rate) grows into intervals nobody means.
MIN_RATE_PER_S = 0.001
MAX_RATE_PER_S = 100_000.0
DEFAULT_RATE_PER_S = 10.0
MAX_RETRY_DELAY_S = 7 * 86_400
MAX_RETRY_STEPS = 100


def finite_in_range(
    value: float, *, where: str, low: float, high: float, low_inclusive: bool = True
) -> float:
    """``value`` as a float when it is finite and within [low, high]; else one-line InvalidInput."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"not a number: {value!r}", where=where) from None
    if not math.isfinite(number):
        raise InvalidInput(f"must be a finite number, not {number}", where=where)
    below = number < low if low_inclusive else number <= low
    if below or number > high:
        bracket = "[" if low_inclusive else "("
        raise InvalidInput(f"must be in {bracket}{low:g}, {high:g}], not {number:g}", where=where)
    return number


def check_rate_limit(value: float, *, where: str = "--rate-limit") -> float:
    """Requests per second: finite, between 0.001 and 100000."""
    return finite_in_range(value, where=where, low=MIN_RATE_PER_S, high=MAX_RATE_PER_S)


def check_retry_schedule(
    schedule: Sequence[int] | None, *, where: str = "--retry-schedule"
) -> list[int] | None:
    """Whole seconds to wait after each failed attempt: 1 to 100 steps, each 0 to 7 days."""
    if schedule is None:
        return None
    if isinstance(schedule, str | bytes) or not schedule:
        raise InvalidInput("a non-empty list of whole seconds", where=where)
    if len(schedule) > MAX_RETRY_STEPS:
        raise InvalidInput(f"at most {MAX_RETRY_STEPS} steps, not {len(schedule)}", where=where)
    steps: list[int] = []
    for i, step in enumerate(schedule, start=1):
        # bool is an int to Python, and 2.5 would be truncated silently by int().
        if isinstance(step, bool) or not isinstance(step, int):
            raise InvalidInput(f"step {i}: whole seconds, not {step!r}", where=where)
        if not 0 <= step <= MAX_RETRY_DELAY_S:
            raise InvalidInput(
                f"step {i}: must be 0 to {MAX_RETRY_DELAY_S} s (7 days), not {step}", where=where
            )
        steps.append(step)
    return steps


def parse_retry_schedule(text: str | None, *, where: str = "--retry-schedule") -> list[int] | None:
    """``5,30,120`` as a checked schedule; None (the default schedule) when empty."""
    if text is None or not text.strip():
        return None
    steps: list[int] = []
    for i, part in enumerate(text.split(","), start=1):
        part = part.strip()
        # ASCII digits only: int() also takes '1_000', '٣' and surrounding whitespace.
        if not (part.isascii() and part.isdigit()) or len(part) > 12:
            shown = part if len(part) <= 20 else part[:17] + "..."
            raise InvalidInput(f"step {i}: whole seconds, not {shown!r}", where=where)
        steps.append(int(part))
    return check_retry_schedule(steps, where=where)
