"""``alert-delivery db upgrade | status``."""

import argparse

from alert_delivery.db import connect, resolve_database_url
from alert_delivery.db.connection import describe_host
from alert_delivery.db.migrations import status, upgrade


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
    st.set_defaults(handler=cmd_status)


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
