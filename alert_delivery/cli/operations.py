"""`alert-delivery status` and `alert-delivery exporter`."""

import argparse
import logging
import signal
import threading
import warnings
from types import FrameType

from alert_delivery.cli.output import add_json_flag, print_json
from alert_delivery.config import Settings, load_settings
from alert_delivery.db import connect, resolve_database_url
from alert_delivery.defs.instance import prepare_dagster_home
from alert_delivery.errors import InvalidInput
from alert_delivery.operations.status import format_status, read_status
from alert_delivery.operations.ticks import (
    format_ticks,
    instance_configured,
    read_ticks,
    with_declared,
)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    status = sub.add_parser(
        "status",
        help="queue depth, oldest pending delivery, degraded webhooks, workers, sensor ticks",
    )
    status.add_argument(
        "--no-dagster", action="store_true", help="skip reading the Dagster instance's ticks"
    )
    add_json_flag(status)
    status.set_defaults(handler=cmd_status)

    exporter = sub.add_parser("exporter", help="serve Prometheus /metrics from the database")
    exporter.add_argument("--host", default="127.0.0.1", help="address to listen on")
    exporter.add_argument("--port", type=int, default=9464, help="port to listen on")
    exporter.set_defaults(handler=cmd_exporter)


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    url = resolve_database_url(settings)
    with connect(url, autocommit=True) as conn:
        system = read_status(conn)
    if args.json:
        return print_json({"status": system, "dagster": _dagster_json(settings, url, args)})
    lines = format_status(system)
    if not args.no_dagster:
        lines += _dagster_lines(settings, url)
    print("\n".join(lines))
    return 0


def _dagster_json(settings: Settings, url: str, args: argparse.Namespace) -> object:
    if args.no_dagster:
        return None
    if not instance_configured(settings.dagster_home):
        return {"error": "no Dagster instance configured"}
    try:
        prepare_dagster_home(settings, url)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        declared, problem = _declared_instigators()
        return {
            "ticks": with_declared(read_ticks(settings.dagster_home), declared),
            "problem": problem,
        }
    except Exception as exc:  # the rest of the report is still worth printing
        return {"error": (str(exc).strip().splitlines() or [type(exc).__name__])[0]}


def _dagster_lines(settings: Settings, url: str) -> list[str]:
    home = settings.dagster_home
    if not instance_configured(home):
        return [
            f"Sensors and schedules: no Dagster instance configured (no dagster.yaml in {home})"
        ]
    try:
        # The same DAGSTER_PG_URL `alert-delivery ui` uses, so both read one instance.
        prepare_dagster_home(settings, url)
        logging.getLogger("alembic").setLevel(logging.WARNING)  # Dagster's storage check chatter
        declared, problem = _declared_instigators()
        lines = format_ticks(with_declared(read_ticks(home), declared))
        if problem:
            lines.append(f"  (definitions not loaded, only recorded ones listed: {problem})")
        return lines
    except Exception as exc:  # the rest of the report is still worth printing
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return [f"Sensors and schedules: cannot read the Dagster instance in {home}: {first}"]


def _declared_instigators() -> tuple[list[tuple[str, str, bool]], str | None]:
    """(name, kind, running by default) of every sensor and schedule in the code location, or
    why they could not be loaded (broken code must not hide what the instance recorded)."""
    import dagster as dg

    try:
        # Dagster's preview/beta notices about other modules' definitions are not status output.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from alert_delivery.definitions import load_definitions

            repo = load_definitions().get_repository_def()
    except Exception as exc:
        return [], (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    running = dg.DefaultSensorStatus.RUNNING
    declared = [(s.name, "sensor", s.default_status == running) for s in repo.sensor_defs]
    declared += [
        (s.name, "schedule", s.default_status == dg.DefaultScheduleStatus.RUNNING)
        for s in repo.schedule_defs
    ]
    return declared, None


def cmd_exporter(args: argparse.Namespace) -> int:
    from alert_delivery.exporter import serve

    if not 0 < args.port < 65536:
        raise InvalidInput(f"must be between 1 and 65535, got {args.port}", where="--port")
    url = resolve_database_url()
    try:
        server, _thread = serve(url, args.host, args.port)
    except OSError as exc:
        raise InvalidInput(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", where="--port"
        ) from None
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    print(f"serving http://{args.host}:{args.port}/metrics (Ctrl-C to stop)", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
