"""Waiting on a condition with a deadline, never on a fixed sleep."""

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], what: str, *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting until {what}")
        time.sleep(0.02)
