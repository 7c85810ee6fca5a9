"""``alert-delivery worker --processes N``: N worker processes on one queue, one parent.

The children are ordinary ``alert-delivery worker`` processes (they share the queue through SKIP
LOCKED and leases, like workers on different machines). The parent only supervises: it forwards
SIGTERM and SIGINT to every child and waits for them to finish their attempts, and it restarts a
child that exits on its own, after a pause that doubles (1 s up to 30 s) while children keep
failing soon after their start.
"""

import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType

log = logging.getLogger("alert_delivery.worker")
POLL_S = 0.2
RESTART_BASE_S = 1.0
RESTART_CAP_S = 30.0
HEALTHY_AFTER_S = 60.0
"""A child that ran this long before it exited restarts after the base pause again."""
STOP_GRACE_S = 60.0
"""How long stopped children may take to finish their attempts before they are killed."""


def run_pool(argv_for: Callable[[int], list[str]], processes: int, env: Mapping[str, str]) -> int:
    """Run ``processes`` children (``argv_for(i)`` is child i's command line) until SIGTERM or
    SIGINT; returns 0 when every child stopped cleanly, else the first non-zero exit code."""
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def start(i: int) -> subprocess.Popen[bytes]:
        started[i] = time.monotonic()
        return subprocess.Popen(argv_for(i), env=dict(env), preexec_fn=death_signal)

    death_signal = _stop_with_parent()
    started: dict[int, float] = {}
    pauses = dict.fromkeys(range(processes), RESTART_BASE_S)
    due: dict[int, float] = {}
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    children = {i: start(i) for i in range(processes)}
    try:
        while not stopping:
            time.sleep(POLL_S)
            now = time.monotonic()
            for i, proc in list(children.items()):
                code = proc.poll()
                if code is None or stopping:
                    continue
                if i not in due:
                    if now - started[i] >= HEALTHY_AFTER_S:
                        pauses[i] = RESTART_BASE_S
                    log.warning(
                        "worker process %d exited with %d; restarting in %.0f s", i, code, pauses[i]
                    )
                    due[i] = now + pauses[i]
                    pauses[i] = min(RESTART_CAP_S, pauses[i] * 2)
                elif now >= due[i]:
                    del due[i]
                    children[i] = start(i)
        # A child waiting for its restart already said why it ended: it is not started again.
        return _wait_all([proc for i, proc in children.items() if i not in due])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> Callable[[], None] | None:
    """What a child runs before exec (Linux): SIGTERM when the parent dies, even by SIGKILL, so
    no worker outlives its supervisor. libc is loaded here, in the parent: nothing in between
    fork and exec may start a process or take a lock. Elsewhere a child outlives a killed parent."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return set_death_signal


def _wait_all(procs: list[subprocess.Popen[bytes]]) -> int:
    deadline = time.monotonic() + STOP_GRACE_S
    result = 0
    for proc in procs:
        try:
            code = proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("a worker process did not stop in %.0f s; killed", STOP_GRACE_S)
            proc.kill()
            code = proc.wait()
        if code and not result:
            result = code
    return result
