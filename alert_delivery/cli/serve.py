"""`alert-delivery serve`: the HTTP API (Alertmanager v2, PagerDuty Events v2, native)."""

import argparse
import sys

from alert_delivery.errors import InvalidInput


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "serve", help="HTTP API: Alertmanager v2, PagerDuty Events v2, native (needs tokens)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=9093, help="port (9093, Alertmanager's)")
    p.add_argument("--max-body", type=int, default=1 << 20, help="bytes per request (1 MiB)")
    p.add_argument(
        "--threads",
        type=int,
        default=8,
        help="database threads and their connections (8), and at most as many async "
        "connections for raising alerts",
    )
    p.add_argument(
        "--access-log", action="store_true", help="log every request line (never headers)"
    )
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import logging

    from aiohttp import web

    from alert_delivery.api import ServeOptions, build_app
    from alert_delivery.api.database import Database
    from alert_delivery.api.tokens import ensure_table
    from alert_delivery.db import connect, resolve_database_url
    from alert_delivery.delivery.loop import loop_factory

    if not 0 < args.port < 65536:
        raise InvalidInput(f"not a port: {args.port}", where="--port")
    if not 1024 <= args.max_body <= 1 << 30:
        raise InvalidInput("must be between 1024 and 1073741824 bytes", where="--max-body")
    if not 1 <= args.threads <= 256:
        raise InvalidInput("must be between 1 and 256", where="--threads")
    url = resolve_database_url()
    with connect(url, autocommit=True) as conn:
        ensure_table(conn)
    db = Database(url, threads=args.threads)
    app = build_app(db, ServeOptions(max_body=args.max_body, threads=args.threads))
    if args.access_log:
        logging.getLogger("aiohttp.access").setLevel(logging.INFO)

    def ready(_message: str) -> None:
        print(
            f"serving on http://{args.host}:{args.port} (OpenAPI at /openapi.json)",
            file=sys.stderr,
            flush=True,
        )

    # uvloop where installed, as the worker: a bare aiohttp request cost ~13 % less CPU on it.
    factory = loop_factory()
    try:
        web.run_app(
            app,
            loop=factory() if factory is not None else None,
            host=args.host,
            port=args.port,
            print=ready,
            access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
            handle_signals=True,
            shutdown_timeout=10,
        )
    except OSError as exc:
        raise InvalidInput(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror}", where="--port"
        ) from None
    return 0
