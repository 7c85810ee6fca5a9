"""The embedded server: shared between processes, stopped by its last user on SIGTERM, and a
SIGKILLed owner never blocks the next run. Bad data directories get a message, never deletion."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alert_delivery.db.embedded import ensure_embedded
from alert_delivery.errors import EmbeddedServerError

# About the embedded server and the UI, not the database under test: once per CI run is enough.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="runs in the embedded-PostgreSQL leg only"
)

HOLD = """
import sys, time
from pathlib import Path
from alert_delivery.db.embedded import ensure_embedded
ensure_embedded(Path(sys.argv[1]))
print("ready", flush=True)
time.sleep(120)
"""


def _hold(home: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERT_DELIVERY_")}
    env["ALERT_DELIVERY_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "alert_delivery", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _server_running(home: Path) -> bool:
    pidfile = home / "pgdata" / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


def _wait_stopped(home: Path, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _server_running(home):
            return True
        time.sleep(0.1)
    return False


def test_sigterm_of_last_user_stops_server_and_others_share_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    owner = _hold(home)
    try:
        assert _server_running(home)
        # Another process joins the running server and leaves it running when it exits.
        joined = _cli(home, "db", "upgrade")
        assert joined.returncode == 0, joined.stderr
        assert _server_running(home)
    finally:
        owner.send_signal(signal.SIGTERM)
        owner.wait(timeout=30)
    assert owner.returncode == 128 + signal.SIGTERM
    assert _wait_stopped(home)


def test_sigkilled_owner_does_not_block_next_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    owner = _hold(home)
    owner.kill()
    owner.wait(timeout=10)
    # The orphaned server is reused, and the dead pid is pruned so the next user stops it on exit.
    result = _cli(home, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert _wait_stopped(home)
    again = _cli(home, "db", "status")
    assert again.returncode == 0, again.stderr
    assert "0001_data_model.sql" in again.stdout


def test_foreign_data_directory_is_reported_not_deleted(tmp_path: Path) -> None:
    pgdata = tmp_path / "home" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "important.txt").write_text("not a database")
    with pytest.raises(EmbeddedServerError, match=r"not a PostgreSQL data directory.*rm -rf"):
        ensure_embedded(tmp_path / "home")
    assert (pgdata / "important.txt").read_text() == "not a database"
    result = _cli(tmp_path / "home", "db", "status")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_other_major_version_is_reported(tmp_path: Path) -> None:
    pgdata = tmp_path / "home" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("14\n")
    with pytest.raises(EmbeddedServerError, match="holds a PostgreSQL 14 cluster"):
        ensure_embedded(tmp_path / "home")
    assert (pgdata / "PG_VERSION").exists()


def test_corrupt_data_directory_names_log_and_what_to_remove(tmp_path: Path) -> None:
    home = tmp_path / "home"
    owner = _hold(home)
    owner.send_signal(signal.SIGTERM)
    owner.wait(timeout=30)
    assert _wait_stopped(home)
    (home / "pgdata" / "global" / "pg_control").write_bytes(b"garbage")
    result = _cli(home, "db", "status")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, result.stderr
    assert "did not start" in line
    assert f"rm -rf {home / 'pgdata'}" in line
    assert (home / "pgdata" / "PG_VERSION").exists()
