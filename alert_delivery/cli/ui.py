"""``alert-delivery ui``: the Dagster webserver and daemon on the project's database.

This process owns the embedded server (when no database URL is set) and supervises ``dagster dev``
in its own session: SIGINT or SIGTERM stops Dagster first, then the database, so nothing is left
running. Children get the database URL in the environment and never start a server of their own.
"""

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType

from alert_delivery.cli import logformat
from alert_delivery.config import Settings, load_settings
from alert_delivery.db import connect, resolve_database_url
from alert_delivery.db.migrations import upgrade
from alert_delivery.defs.instance import prepare_dagster_home
from alert_delivery.delivery.ssrf import announce_allow_list
from alert_delivery.errors import InvalidInput

STOP_TIMEOUT_S = 30
DEMO_ENV = "demo.env"
DEMO_VARIABLES = ("ALERT_DELIVERY_ALLOWED_TARGETS",)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    ui = sub.add_parser("ui", help="start the Dagster webserver and daemon (http://127.0.0.1:3000)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=3000, help="port (default 3000; make ui PORT=N)")
    logformat.add_option(ui)
    ui.set_defaults(handler=cmd_ui)


def demo_environment(settings: Settings) -> dict[str, str]:
    """The settings ``alert-delivery demo`` ran with (``<home>/demo.env``), for the variables
    this process does not set itself: the daemon must reach the demo's loopback receiver as the
    demo did, or it dead-letters the demo's deliveries through the SSRF guard."""
    path = settings.home / DEMO_ENV
    if settings.is_production or not path.is_file():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name in DEMO_VARIABLES and not os.environ.get(name):
            found[name] = value.strip()
    return found


def _reset_signals() -> None:
    # A shell without job control starts background jobs with SIGINT ignored; dagster dev would
    # then ignore our stop request.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def dagster_dev_command(host: str, port: int) -> list[str]:
    command = [sys.executable, "-m", "dagster", "dev", "-h", host, "-p", str(port)]
    workspace = Path.cwd() / "workspace.yaml"
    if workspace.exists():
        return [*command, "-w", str(workspace)]
    return [*command, "-m", "alert_delivery.definitions"]


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on before anything starts.

    ``dagster dev`` whose webserver cannot bind keeps its daemon running and never exits; a
    check here starts nothing (not even the embedded database). A port taken between this check
    and the webserver's bind is still that race, rare by comparison.
    """
    if not 0 < port < 65536:
        raise InvalidInput(f"not a port: {port}", where="--port")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"cannot resolve {host!r}: {exc}", where="--host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As the webserver binds: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidInput(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", where="--port"
            ) from None


def cmd_ui(args: argparse.Namespace) -> int:
    check_port_free(args.host, args.port)
    settings = load_settings()
    url = resolve_database_url(settings)
    with connect(url, autocommit=True) as conn:
        upgrade(conn)
    prepare_dagster_home(settings, url)
    os.environ.update(demo_environment(settings))
    # Checked here, so a bad value is one line now rather than a failing daemon later; and the
    # allow-list warning is said once, before Dagster's own output.
    settings = load_settings()
    announce_allow_list(settings.allowed_targets)
    os.environ["ALERT_DELIVERY_DATABASE_URL"] = url
    # Children run in DAGSTER_HOME (so dagster dev does not warn that the repository's
    # dagster.yaml template is ignored); they get the project home explicitly instead of
    # deriving it from their working directory.
    os.environ["ALERT_DELIVERY_HOME"] = str(settings.home)
    print(f"Dagster UI: http://{args.host}:{args.port}  (DAGSTER_HOME={settings.dagster_home})")
    print("Stop with Ctrl-C; the embedded database stops with it.", flush=True)
    child = subprocess.Popen(
        dagster_dev_command(args.host, args.port),
        cwd=settings.dagster_home,
        start_new_session=True,
        preexec_fn=_reset_signals,  # safe: this process has started no threads
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return child.wait()
    except KeyboardInterrupt:
        return _stop_child(child)


def _stop_child(child: "subprocess.Popen[bytes]") -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(child.pid, signal.SIGINT)
        child.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    except ProcessLookupError:
        pass
    # Run workers the daemon launched live in the same session; make sure none outlives us.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    print("Dagster stopped.", flush=True)
    return 0
