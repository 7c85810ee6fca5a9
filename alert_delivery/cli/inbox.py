"""`alert-delivery inbox list / read`: the in-app inbox."""

import argparse

from alert_delivery.alerting import inbox
from alert_delivery.cli.output import add_json_flag, print_json
from alert_delivery.db import transaction


def _list(args: argparse.Namespace) -> int:
    with transaction() as conn:
        items = inbox.list_inbox(
            conn, recipient=args.recipient, include_read=args.all, limit=args.limit
        )
    if args.json:
        return print_json(items)
    print(f" {'id':>6}  {'created':<16}  {'recipient':<16}  {'severity':<8}  title")
    for m in items:
        flag = " " if m.read_at else "*"
        print(
            f"{flag}{m.message_id:>6}  {m.created_at:%Y-%m-%d %H:%M}  {m.recipient:<16}  "
            f"{m.severity:<8}  {m.title[:80]}"
        )
    if not items:
        print("(no messages)")
    return 0


def _read(args: argparse.Namespace) -> int:
    with transaction() as conn:
        m = inbox.read_message(conn, args.message_id)
    print(f"[{m.severity}] {m.title}")
    print(f"to {m.recipient} at {m.created_at:%Y-%m-%d %H:%M:%S %Z} (alert {m.alert_id})")
    print()
    print(m.body)
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    box = sub.add_parser("inbox", help="in-app inbox messages")
    box_sub = box.add_subparsers(dest="inbox_command", metavar="COMMAND", required=True)
    listing = box_sub.add_parser("list", help="unread messages, newest first")
    listing.add_argument("--recipient")
    listing.add_argument("--all", action="store_true", help="include read messages")
    listing.add_argument("--limit", type=int, default=50)
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    read = box_sub.add_parser("read", help="show a message and mark it read")
    read.add_argument("message_id", type=int)
    read.set_defaults(handler=_read)
