"""``alert-delivery db upgrade | status``."""

import argparse

from alert_delivery.db import connect, resolve_database_url
from alert_delivery.db.connection import describe_host
from alert_delivery.db.migrations import status, upgrade


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db_sub.add_parser("upgrade", help="apply pending migrations")
    up.add_argument("--target", type=int, help="stop after this migration version")
    up.set_defaults(handler=cmd_upgrade)
    st = db_sub.add_parser("status", help="list migrations and whether they are applied")
    st.set_defaults(handler=cmd_status)


def cmd_upgrade(args: argparse.Namespace) -> int:
    url = resolve_database_url()
    with connect(url, autocommit=True) as conn:
        applied = upgrade(conn, target=args.target)
    if not applied:
        print(f"database {describe_host(url)} is up to date")
    for migration in applied:
        print(f"applied {migration.filename}")
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
    return 0
