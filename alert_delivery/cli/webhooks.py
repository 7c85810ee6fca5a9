"""`alert-delivery webhooks`: add, update, list, test, disable, enable, remove, rotate-secret.

URLs are shown redacted; URLs, secrets and routing keys can be read from a file or stdin
(``--url-file -``) so they never appear on a command line.
"""

import argparse
import sys

from alert_delivery.cli.output import add_json_flag, print_json, read_value
from alert_delivery.db.connection import resolve_database_url
from alert_delivery.delivery.limits import check_rate_limit, parse_retry_schedule
from alert_delivery.delivery.outcome import Verdict
from alert_delivery.delivery.ping import ping_webhook
from alert_delivery.delivery.registry import (
    KINDS,
    add_webhook,
    list_webhooks,
    parse_config,
    remove_webhook,
    rotate_signing_secret,
    set_active,
    update_webhook,
)
from alert_delivery.errors import InvalidInput


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("webhooks", help="register and manage delivery targets")
    s = p.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)
    add = s.add_parser("add", help="register a target (prints its id)")
    add.add_argument("name")
    add.add_argument("--kind", required=True, choices=KINDS)
    _secret_flags(add)
    add.add_argument("--to", action="append", default=[], help="email recipient (repeat)")
    add.add_argument("--from", dest="sender", help="email sender address")
    add.add_argument("--recipient", action="append", default=[], help="inbox user (repeat)")
    add.add_argument("--config", help="extra JSON object merged into the target config")
    add.add_argument("--rate-limit", type=float, default=10.0, help="requests/s (10)")
    add.add_argument("--retry-schedule", help="comma-separated seconds, e.g. 5,30,120")
    add.set_defaults(handler=handle_add)
    rot = s.add_parser(
        "rotate-secret", help="sign with a new secret (and the old one until --finish)"
    )
    rot.add_argument("name")
    rot.add_argument("--secret", help="the new whsec_ secret (generated when omitted)")
    rot.add_argument("--secret-file", help="read the new secret from a file, - for stdin")
    rot.add_argument("--finish", action="store_true", help="stop signing with the old secret")
    rot.set_defaults(handler=handle_rotate_secret)
    ls = s.add_parser("list", help="list targets (URLs redacted)")
    add_json_flag(ls)
    ls.set_defaults(handler=handle_list)
    up = s.add_parser("update", help="change a target in place (id, history and queue kept)")
    up.add_argument("name")
    _secret_flags(up)
    up.add_argument("--rate-limit", type=float, help="requests/s")
    up.add_argument("--retry-schedule", help="comma-separated seconds, or 'default'")
    up.add_argument(
        "--send-resolved",
        choices=("on", "off"),
        help="acknowledge and resolve notices to this target",
    )
    up.set_defaults(handler=handle_update)
    for action, helptext in (
        ("test", "send a signed ping; exit 0 only on 2xx"),
        ("disable", "stop delivering to a target"),
        ("enable", "resume a disabled target"),
        ("remove", "delete a target and its queued rows"),
    ):
        q = s.add_parser(action, help=helptext)
        q.add_argument("name")
        q.set_defaults(handler=_HANDLERS[action])


def _secret_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        help="https URL (smtp://[user:pass@]host:port for email; PagerDuty: the Events v2 URL"
        " by default)",
    )
    p.add_argument("--url-file", help="read the URL from a file, - for stdin (not shown in ps)")
    p.add_argument(
        "--secret",
        help="whsec_ signing secret (generated when omitted); for pagerduty the routing key",
    )
    p.add_argument("--secret-file", help="read the secret or routing key from a file, - for stdin")


def _from_flag_or_file(args: argparse.Namespace, name: str) -> str | None:
    value: str | None = getattr(args, name)
    path: str | None = getattr(args, f"{name}_file", None)
    if value is not None and path is not None:
        raise InvalidInput(f"give --{name} or --{name}-file, not both", where=f"--{name}")
    if path is not None:
        if path == "-" and getattr(args, "url_file", None) == getattr(args, "secret_file", None):
            raise InvalidInput("only one value can come from stdin", where=f"--{name}-file")
        return read_value(path, where=f"--{name}-file")
    return value


def handle_update(args: argparse.Namespace) -> int:
    schedule = None
    clear = args.retry_schedule is not None and args.retry_schedule.strip().lower() == "default"
    if args.retry_schedule is not None and not clear:
        schedule = parse_retry_schedule(args.retry_schedule)
    rate = None if args.rate_limit is None else check_rate_limit(args.rate_limit)
    changed = update_webhook(
        resolve_database_url(),
        args.name,
        url=_from_flag_or_file(args, "url"),
        secret=_from_flag_or_file(args, "secret"),
        rate_limit_per_s=rate,
        retry_schedule_s=schedule,
        clear_retry_schedule=clear,
        send_resolved=None if args.send_resolved is None else args.send_resolved == "on",
    )
    print(f"{args.name}: updated {', '.join(changed)}")
    return 0


def handle_add(args: argparse.Namespace) -> int:
    # Numbers first: a bad rate or schedule is refused before anything is resolved or stored.
    rate = check_rate_limit(args.rate_limit)
    schedule = parse_retry_schedule(args.retry_schedule)
    config = parse_config(args.config, where="--config")
    if args.kind == "email":
        config.setdefault("to", args.to)
        if args.sender:
            config["from"] = args.sender
    if args.kind == "inbox":
        config.setdefault("recipients", args.recipient)
    added = add_webhook(
        resolve_database_url(),
        name=args.name,
        kind=args.kind,
        url=_from_flag_or_file(args, "url"),
        secret=_from_flag_or_file(args, "secret"),
        config=config,
        rate_limit_per_s=rate,
        retry_schedule_s=schedule,
    )
    print(added.webhook_id)
    if added.generated_secret:
        print(
            f"signing secret (shown once, store it now): {added.generated_secret}",
            file=sys.stderr,
        )
    return 0


def handle_list(args: argparse.Namespace) -> int:
    rows = list_webhooks(resolve_database_url())
    if args.json:
        return print_json(rows)
    print(f"{'id':>5}  {'name':<24} {'kind':<10} {'active':<6} {'breaker':<9} {'health':<11} url")
    for w in rows:
        print(
            f"{w.webhook_id:>5}  {w.name:<24} {w.kind:<10} {'yes' if w.active else 'no':<6} "
            f"{w.breaker_state or '-':<9} {w.health or '-':<11} {w.url_redacted or '-'}"
            + (f"  ({w.disabled_reason})" if w.disabled_reason else "")
        )
    if not rows:
        print("(no webhooks)")
    return 0


def handle_test(args: argparse.Namespace) -> int:
    attempt = ping_webhook(resolve_database_url(), args.name)
    if attempt.verdict is Verdict.DELIVERED:
        print(f"{args.name}: ok ({attempt.status}, {attempt.latency_ms or 0:.1f} ms)")
        return 0
    print(f"{args.name}: failed: {attempt.error or attempt.status}", file=sys.stderr)
    return 1


def handle_rotate_secret(args: argparse.Namespace) -> int:
    generated = rotate_signing_secret(
        resolve_database_url(),
        args.name,
        new_secret=_from_flag_or_file(args, "secret"),
        finish=args.finish,
    )
    if args.finish:
        print(f"{args.name}: signing with the newest secret only")
    else:
        print(f"{args.name}: signing with the new and the previous secret (until --finish)")
    if generated:
        print(f"new signing secret (shown once, store it now): {generated}", file=sys.stderr)
    return 0


def handle_disable(args: argparse.Namespace) -> int:
    set_active(resolve_database_url(), args.name, False)
    print(f"{args.name}: disabled")
    return 0


def handle_enable(args: argparse.Namespace) -> int:
    set_active(resolve_database_url(), args.name, True)
    print(f"{args.name}: enabled")
    return 0


def handle_remove(args: argparse.Namespace) -> int:
    remove_webhook(resolve_database_url(), args.name)
    print(f"{args.name}: removed")
    return 0


_HANDLERS = {
    "test": handle_test,
    "disable": handle_disable,
    "enable": handle_enable,
    "remove": handle_remove,
}
