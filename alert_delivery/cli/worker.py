"""`alert-delivery worker`: run a delivery worker until SIGTERM.

Every tuning flag can come from the environment too (a flag wins): ALERT_DELIVERY_WORKER_
CONCURRENCY, _BATCH_SIZE, _POLL_INTERVAL, _LEASE, _PROCESSES, _METRICS_PORT, validated like the
flags (finite, in range), so a Deployment configures workers without templating the command line.

``--processes N`` (default 1) runs N worker processes under one supervising parent
(``worker_pool``): one Python process saturates one core with its event loop.
"""

import argparse
import os
import sys
from collections.abc import Mapping

from alert_delivery.cli import logformat
from alert_delivery.cli.worker_pool import run_pool
from alert_delivery.config import env_number
from alert_delivery.db.connection import resolve_database_url
from alert_delivery.delivery.engine import EngineConfig
from alert_delivery.delivery.limits import finite_in_range
from alert_delivery.delivery.sender import SenderConfig
from alert_delivery.errors import InvalidInput
from alert_delivery.worker import WorkerOptions, run_worker

_BOUNDS = {
    "concurrency": 10_000,
    "batch_size": 100_000,
    "poll_interval": 3600.0,
    "connect_timeout": 3600.0,
    "read_timeout": 3600.0,
    "lease": 86_400.0,
    "breaker_cooldown": 86_400.0,
    "processes": 64,
}


ENV_PREFIX = "ALERT_DELIVERY_WORKER_"
# option -> (default, integer, upper bound); the environment variable is ENV_PREFIX + OPTION.
ENV_OPTIONS: dict[str, tuple[float, bool, float]] = {
    "concurrency": (50, True, _BOUNDS["concurrency"]),
    "batch_size": (100, True, _BOUNDS["batch_size"]),
    "poll_interval": (1.0, False, _BOUNDS["poll_interval"]),
    "lease": (120.0, False, _BOUNDS["lease"]),
    "processes": (1, True, _BOUNDS["processes"]),
}


def apply_environment(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """Fill options the command line left unset from the environment, then the defaults."""
    for name, (default, integer, high) in ENV_OPTIONS.items():
        if getattr(args, name) is not None:
            continue
        value = env_number(
            environ,
            ENV_PREFIX + name.upper(),
            default,
            low=0,
            high=high,
            integer=integer,
            low_inclusive=False,
        )
        setattr(args, name, int(value) if integer else value)
    if args.metrics_port is None and environ.get(ENV_PREFIX + "METRICS_PORT", "").strip():
        port = env_number(environ, ENV_PREFIX + "METRICS_PORT", 0, low=1, high=65535, integer=True)
        args.metrics_port = int(port)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("worker", help="deliver queued alerts in milliseconds (LISTEN/NOTIFY)")
    p.add_argument("--id", dest="worker_id", help="worker id (default host:pid:random)")
    p.add_argument(
        "--concurrency",
        type=int,
        help="attempts in flight (50; env ALERT_DELIVERY_WORKER_CONCURRENCY)",
    )
    p.add_argument("--batch-size", type=int, help="rows per claim (100)")
    p.add_argument("--poll-interval", type=float, help="seconds between polls (1)")
    p.add_argument("--connect-timeout", type=float, default=5.0, help="seconds (5)")
    p.add_argument("--read-timeout", type=float, default=10.0, help="seconds (10)")
    p.add_argument("--lease", type=float, help="lease per claimed row, s (120)")
    p.add_argument(
        "--processes",
        type=int,
        help="worker processes sharing the queue under one parent (1; with --metrics-port P,"
        " process i serves P+i)",
    )
    p.add_argument(
        "--breaker-cooldown",
        type=float,
        default=60.0,
        help="seconds an open breaker waits before its one probe (60)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve this process's Prometheus metrics on 127.0.0.1:PORT (off by default;"
        " or ALERT_DELIVERY_WORKER_METRICS_PORT)",
    )
    p.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port")
    logformat.add_option(p)
    p.set_defaults(handler=handle)


def _serve_process_metrics(host: str, port: int) -> None:
    from alert_delivery.exporter import start_process_metrics_server

    if not 0 < port < 65536:
        raise InvalidInput(f"not a port: {port}", where="--metrics-port")
    try:
        start_process_metrics_server(port, host=host)
    except OSError as exc:
        raise InvalidInput(
            f"cannot listen on {host}:{port}: {exc.strerror}", where="--metrics-port"
        ) from None
    print(f"worker metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)


def _pool(args: argparse.Namespace) -> int:
    """Run ``args.processes`` single-process workers with these options; the parent resolves the
    database once (an embedded server is started here and outlives the children)."""
    if args.metrics_port is not None and args.metrics_port + args.processes > 65536:
        raise InvalidInput("no room for one port per process", where="--metrics-port")
    env = dict(os.environ, ALERT_DELIVERY_DATABASE_URL=resolve_database_url())

    def argv_for(i: int) -> list[str]:
        argv = [sys.executable, "-m", "alert_delivery", "--log-format", args.log_format]
        argv += ["-v"] if args.verbose else []
        argv += ["worker", "--processes", "1"]
        if args.worker_id:
            argv += ["--id", f"{args.worker_id}-{i}"]
        for name in _BOUNDS:
            if name != "processes":
                argv += ["--" + name.replace("_", "-"), str(getattr(args, name))]
        if args.metrics_port is not None:
            argv += ["--metrics-port", str(args.metrics_port + i)]
            argv += ["--metrics-host", args.metrics_host]
        return argv

    return run_pool(argv_for, args.processes, env)


def handle(args: argparse.Namespace) -> int:
    apply_environment(args, os.environ)
    # Finite and bounded: NaN passes "<= 0" checks, and an infinite lease or timeout overflows
    # the interval arithmetic of every claim.
    for name, high in _BOUNDS.items():
        finite_in_range(
            getattr(args, name),
            where="--" + name.replace("_", "-"),
            low=0,
            high=high,
            low_inclusive=False,
        )
    if args.processes > 1:
        return _pool(args)
    config = EngineConfig(
        sender=SenderConfig(
            concurrency=args.concurrency,
            connect_timeout_s=args.connect_timeout,
            read_timeout_s=args.read_timeout,
        ),
        lease_s=args.lease,
        breaker_cooldown_s=args.breaker_cooldown,
    )
    options = WorkerOptions(batch_size=args.batch_size, poll_interval_s=args.poll_interval)
    if args.metrics_port is not None:
        _serve_process_metrics(args.metrics_host, args.metrics_port)
    totals = run_worker(
        resolve_database_url(), worker_id=args.worker_id, options=options, config=config
    )
    print(
        f"worker stopped: delivered {totals.delivered}, retrying {totals.retrying}, "
        f"dead {totals.dead}, deferred {totals.deferred}, released {totals.released}",
        file=sys.stderr,
    )
    return 0
