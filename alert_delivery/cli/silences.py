"""`alert-delivery silence add / list / expire`: snooze alerts selected by label matchers."""

import argparse
from datetime import datetime

from alert_delivery.alerting import silences
from alert_delivery.alerting.matchers import describe
from alert_delivery.cli.output import add_json_flag, print_json
from alert_delivery.db import transaction
from alert_delivery.errors import InvalidInput
from alert_delivery.inputs import parse_time


def _time(text: str | None, option: str) -> datetime | None:
    return None if text is None else parse_time(text, where=option)


def _add(args: argparse.Namespace) -> int:
    if args.minutes is not None and (args.start or args.end):
        raise InvalidInput("give either --minutes or --start/--end, not both", where="--minutes")
    with transaction() as conn:
        silence_id = silences.add_silence(
            conn,
            match=args.match,
            operation_type=args.operation,
            alert_type=args.alert_type,
            reason=args.reason,
            creator=args.creator,
            minutes=args.minutes,
            start=_time(args.start, "--start"),
            end=_time(args.end, "--end"),
        )
    print(f"silence {silence_id} added")
    return 0


def _list(args: argparse.Namespace) -> int:
    with transaction() as conn:
        rows = silences.list_silences(conn, include_ended=args.all)
    if args.json:
        return print_json(rows)
    print(f"{'id':>5}  {'starts':<17}  {'ends':<17}  {'state':<15}  holding  matchers / reason")
    for s in rows:
        state = "active" if s.active else ("expired" if s.expired_at else "scheduled/ended")
        print(
            f"{s.silence_id:>5}  {s.starts_at:%Y-%m-%dT%H:%MZ}  {s.ends_at:%Y-%m-%dT%H:%MZ}  "
            f"{state:<15}  {s.holding:>7}  {describe(s.matchers)}  by={s.created_by}  "
            f"reason={s.reason}"
        )
    if not rows:
        print("(no silences)")
    return 0


def _expire(args: argparse.Namespace) -> int:
    with transaction() as conn:
        released = silences.expire_silence(conn, args.silence_id)
    print(f"silence {args.silence_id} expired; {released} held alert(s) released")
    return 0


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 90 * 24 * 60:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most 129600 (90 days), got {text}"
        )
    return value


def _silence_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"no such silence id: {text}")
    return value


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    silence = sub.add_parser("silence", help="silences (snoozes)")
    silence_sub = silence.add_subparsers(dest="silence_command", metavar="COMMAND", required=True)
    add = silence_sub.add_parser("add", help="silence matching alerts for a while")
    add.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="MATCHER",
        help="label matcher, repeatable: name=value, name!=value, name=~regex, name!~regex",
    )
    add.add_argument("--operation", help="shorthand: operation_type=VALUE (ALL: any)")
    add.add_argument("--alert-type", help="shorthand: alert_type=VALUE (ALL: any)")
    add.add_argument("--minutes", type=_minutes, help="duration from now (default 60)")
    add.add_argument("--start", help="ISO 8601 start (UTC if no offset)")
    add.add_argument("--end", help="ISO 8601 end")
    add.add_argument("--reason", required=True)
    add.add_argument("--creator", default="cli")
    add.set_defaults(handler=_add)
    listing = silence_sub.add_parser("list", help="active and scheduled silences")
    listing.add_argument("--all", action="store_true", help="include ended and expired ones")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    expire = silence_sub.add_parser("expire", help="end a silence now")
    expire.add_argument("silence_id", type=_silence_id)
    expire.set_defaults(handler=_expire)
