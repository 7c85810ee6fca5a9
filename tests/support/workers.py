"""`alert-delivery worker` processes for end-to-end tests (callers stop them by pid)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(worker_id: str, *extra: str, capture: bool = True) -> subprocess.Popen[str]:
    """A worker polling every 0.2 s; its output piped (``capture``) or dropped."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "alert_delivery", "worker", "--id", worker_id,
         "--poll-interval", "0.2", "--read-timeout", "5", *extra],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=out,
        stderr=out,
        text=True,
    )  # fmt: skip
