"""`alert-delivery silence add / list / expire`: snooze alerts by operation and alert type."""

import argparse
from datetime import datetime

from alert_delivery.alerting import silences
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
    for s in rows:
        state = "active" if s.active else ("expired" if s.expired_at else "scheduled/ended")
        print(
            f"{s.silence_id:>5}  op={s.operation_type}  type={s.alert_type}  "
            f"{s.starts_at:%Y-%m-%dT%H:%MZ} -> {s.ends_at:%Y-%m-%dT%H:%MZ}  {state}  "
            f"holding={s.holding}  by={s.created_by}  reason={s.reason}"
        )
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
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    silence = sub.add_parser("silence", help="silences (snoozes)")
    silence_sub = silence.add_subparsers(dest="silence_command", metavar="COMMAND", required=True)
    add = silence_sub.add_parser("add", help="silence matching alerts for a while")
    add.add_argument("--operation", required=True, help="operation type or ALL")
    add.add_argument("--alert-type", required=True, help="alert type or ALL")
    add.add_argument("--minutes", type=_minutes, help="duration from now (default 60)")
    add.add_argument("--start", help="ISO 8601 start (UTC if no offset)")
    add.add_argument("--end", help="ISO 8601 end")
    add.add_argument("--reason", required=True)
    add.add_argument("--creator", default="cli")
    add.set_defaults(handler=_add)
    listing = silence_sub.add_parser("list", help="active and scheduled silences")
    listing.add_argument("--all", action="store_true", help="include ended and expired ones")
    listing.set_defaults(handler=_list)
    expire = silence_sub.add_parser("expire", help="end a silence now")
    expire.add_argument("silence_id", type=int)
    expire.set_defaults(handler=_expire)
