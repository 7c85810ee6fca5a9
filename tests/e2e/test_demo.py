"""`make run`'s pipeline from a clean home, twice: the alert is delivered, signed, once."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="the demo runs on the embedded server"
)


def _demo(home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_DELIVERY_", "DAGSTER_"))}
    env["ALERT_DELIVERY_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-m", "alert_delivery", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return proc.stdout


def _field(out: str, pattern: str) -> tuple[str, ...]:
    match = re.search(pattern, out)
    assert match, f"{pattern!r} not in:\n{out}"
    return match.groups()


@pytest.fixture
def home() -> Iterator[Path]:
    # Not under tmp_path: as root the embedded server runs as another user, and any pytest
    # session that starts meanwhile sets /tmp/pytest-of-root back to 0700, locking it out.
    base = Path(tempfile.mkdtemp(prefix="ad-demo-"))
    try:
        yield base / "home"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_demo_delivers_the_spike_alert_once(home: Path) -> None:
    first = _demo(home)
    assert int(_field(first, r"metrics loaded\s+(\d+)")[0]) > 10_000
    assert "CRITICAL" in _field(first, r"anomalies\s+(.+)")[0]
    assert _field(first, r"deliveries\s+delivered (\d+) / retrying (\d+) / dead (\d+)") == (
        "1",
        "0",
        "0",
    )
    assert _field(first, r"receiver (\d+) notification\(s\) .*, (\d+) with a valid signature") == (
        "1",
        "1",
    )
    assert "deliver_pending" in first
    # The demo's alert goes through `alert-delivery serve` too, with a token made for the run.
    assert _field(first, r"HTTP API\s+alert-delivery serve on (\S+), token 'demo-api'")
    assert _field(first, r"POST /api/v1/alerts -> alert \d+ (\w+)") == ("deduplicated",)

    second = _demo(home)
    assert _field(second, r"metrics loaded\s+(\d+)")[0] == "0"
    assert _field(second, r"receiver (\d+) notification\(s\)")[0] == "0"
    assert _field(second, r"deliveries\s+delivered (\d+)")[0] == "1"
    assert not (home / "pgdata" / "postmaster.pid").exists(), "the demo left its server running"
