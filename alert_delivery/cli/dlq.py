"""`alert-delivery dlq`: list dead letters and replay them by id, webhook or time range."""

import argparse
from datetime import datetime

from alert_delivery.cli.output import add_json_flag, print_json
from alert_delivery.db.connection import resolve_database_url
from alert_delivery.delivery.dlq import Selection, list_dead, replay
from alert_delivery.errors import InvalidInput
from alert_delivery.inputs import parse_time


def _when(text: str) -> datetime:
    try:
        return parse_time(text, where="time", require_zone=True)
    except InvalidInput as exc:  # argparse reports ArgumentTypeError as a one-line usage error
        raise argparse.ArgumentTypeError(str(exc).removeprefix("time: ")) from None


def _selectors(p: argparse.ArgumentParser) -> None:
    p.add_argument("--webhook", help="only this webhook (name)")
    p.add_argument("--since", type=_when, help="dead at or after (ISO 8601 with zone)")
    p.add_argument("--until", type=_when, help="dead before (ISO 8601 with zone)")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("dlq", help="dead-letter queue: list and replay")
    s = p.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    ls = s.add_parser("list", help="dead deliveries, newest first")
    _selectors(ls)
    ls.add_argument("--limit", type=int, default=50)
    add_json_flag(ls)
    ls.set_defaults(handler=handle_list)
    rp = s.add_parser("replay", help="queue dead deliveries again (same webhook-id)")
    rp.add_argument("ids", nargs="*", type=int, help="delivery ids")
    _selectors(rp)
    rp.set_defaults(handler=handle_replay)


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(
        ids=getattr(args, "ids", None) or None,
        webhook=args.webhook,
        since=args.since,
        until=args.until,
    )


def handle_list(args: argparse.Namespace) -> int:
    rows = list_dead(resolve_database_url(), _selection(args), limit=args.limit)
    if args.json:
        return print_json(rows)
    print(f"{'id':>8}  {'webhook':<24} {'event':<9} {'tries':>5} {'status':>6}  dead at / error")
    for r in rows:
        print(
            f"{r.delivery_id:>8}  {r.webhook:<24} {r.event:<9} {r.attempts:>5} "
            f"{r.last_status or '-':>6}  {r.dead_at:%Y-%m-%d %H:%M:%S%z}  {r.last_error or ''}"
        )
    if not rows:
        print("(no dead deliveries)")
    return 0


def handle_replay(args: argparse.Namespace) -> int:
    count = replay(resolve_database_url(), _selection(args), actor="cli")
    print(f"replayed {count} dead deliver{'y' if count == 1 else 'ies'}")
    return 0
