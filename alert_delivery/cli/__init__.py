"""The ``alert-delivery`` command line.

Each command group lives in its own module under ``alert_delivery/cli`` and exposes
``register(subparsers)``; handlers take the parsed ``argparse.Namespace`` and return an exit code.
User mistakes (``AlertDeliveryError``) print one line and exit 2; nothing a user types shows a
traceback.
"""

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

import psycopg

from alert_delivery.cli import logformat
from alert_delivery.errors import AlertDeliveryError

# Order is the order of `alert-delivery --help`.
COMMAND_MODULES = (
    "db",
    "demo",
    "ui",
    "metrics",
    "alerts",
    "silences",
    "inbox",
    "escalations",
    "webhooks",
    "keys",
    "dlq",
    "worker",
    "serve",
    "tokens",
    "operations",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other user mistake; --help has the usage.
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _quiet_dagster_notices() -> None:
    """Dagster's beta/preview notices are about its API, not the user's input."""
    from dagster._utils.warnings import BetaWarning, PreviewWarning

    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alert-delivery")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="alert-delivery", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    logformat.add_option(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"alert_delivery.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Libraries (alembic under Dagster's storage, aiohttp) log at INFO; the commands print what
    # matters themselves. -v shows everything.
    logformat.configure(logging.DEBUG if args.verbose else logging.WARNING, args.log_format)
    if not args.verbose:
        _quiet_dagster_notices()
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except AlertDeliveryError as exc:
        print(f"alert-delivery: error: {exc}", file=sys.stderr)
        return 2
    except (
        psycopg.errors.InvalidSchemaName,
        psycopg.errors.UndefinedTable,
        psycopg.errors.UndefinedFunction,
        psycopg.errors.UndefinedColumn,
    ) as exc:
        # A database nobody migrated (or migrated by an older version): say what to run.
        first = (exc.diag.message_primary or type(exc).__name__).splitlines()[0]
        print(
            f"alert-delivery: error: the database is not at this version's schema ({first});"
            " run `alert-delivery db upgrade`",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
