"""`alert-delivery ack / resolve / alerts list / routes ... / inhibit ...`: alert lifecycle,
routing rules and inhibition rules."""

import argparse

from alert_delivery.alerting import inhibition, lifecycle, routing
from alert_delivery.alerting.labels import add_label, parse_label
from alert_delivery.alerting.matchers import describe
from alert_delivery.alerting.producer import raise_alert
from alert_delivery.cli.output import add_json_flag, print_json
from alert_delivery.db import transaction
from alert_delivery.errors import InvalidInput

_MATCH_HELP = "label matcher, repeatable: name=value, name!=value, name=~regex, name!~regex"


def _ack(args: argparse.Namespace) -> int:
    with transaction() as conn:
        sent = lifecycle.acknowledge(conn, args.alert_id, by=args.by)
    print(f"alert {args.alert_id} acknowledged by {args.by} ({sent} notification(s) queued)")
    return 0


def _resolve(args: argparse.Namespace) -> int:
    with transaction() as conn:
        sent = lifecycle.resolve(conn, args.alert_id, by=args.by)
    print(f"alert {args.alert_id} resolved ({sent} notification(s) queued)")
    return 0


def _list(args: argparse.Namespace) -> int:
    with transaction() as conn:
        rows = lifecycle.list_alerts(conn, status=args.status, limit=args.limit)
    if args.json:
        return print_json(rows)
    print(
        f"{'id':>7}  {'created':<16}  {'last seen':<16}  {'severity':<8}  {'status':<12}  "
        f"{'held':<9}  {'count':>5}  {'source':<12}  {'operation':<20}  title"
    )
    for a in rows:
        print(
            f"{a.alert_id:>7}  {a.created_at:%Y-%m-%d %H:%M}  {a.last_seen_at:%Y-%m-%d %H:%M}  "
            f"{a.severity:<8}  {a.status:<12}  {a.held_reason or '-':<9}  {a.occurrences:>5}  "
            f"{a.source[:12]:<12}  {a.operation_type[:20]:<20}  {a.title[:60]}"
        )
    if not rows:
        print("(no alerts)")
    return 0


def _pairs(texts: list[str], where: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for text in texts:
        name, value = parse_label(text, where=where)
        add_label(found, name, value, where=where)
    return found


def _raise(args: argparse.Namespace) -> int:
    labels = _pairs(args.label, "--label")
    annotations: dict[str, str] = {}
    for text in args.annotation:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"expected name=value, got {text[:80]!r}", where="--annotation")
        annotations[name.strip()] = value
    with transaction() as conn:
        result = raise_alert(conn, labels=labels, annotations=annotations)
    if args.json:
        return print_json(result)
    print(f"alert {result.alert_id}: {result.outcome}")
    return 0


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _routes_add(args: argparse.Namespace) -> int:
    with transaction() as conn:
        rule_id = routing.add_rule(
            conn,
            args.name,
            match=args.match,
            severity=args.severity,
            alert_type=args.alert_type,
            operation_type=args.operation,
            webhooks=_split(args.webhooks),
            kinds=_split(args.kinds),
            continues=args.continue_,
            escalate_after_s=args.escalate_after,
            group_wait_s=args.group_wait if args.group_wait is not None else args.group_window,
            group_interval_s=args.group_interval,
            repeat_interval_s=args.repeat_interval,
            max_batch=args.max_batch,
            group_by=_split(args.group_by)
            if args.group_by is not None
            else routing.DEFAULT_GROUP_BY,
            priority=args.priority,
            fallback=args.fallback,
        )
    print(f"routing rule {rule_id} ({args.name}) added")
    return 0


def _routes_list(args: argparse.Namespace) -> int:
    with transaction() as conn:
        rules = routing.list_rules(conn)
    if args.json:
        return print_json(rules)
    print(f"{'id':>4}  {'name':<20}  {'prio':>5}  matchers -> receivers; timers")
    for r in rules:
        targets = ",".join([*r.target_kinds, *(f"@{w}" for w in r.webhooks)]) or "-"
        escalate = "severity default" if r.escalate_after_s is None else f"{r.escalate_after_s}s"
        print(
            f"{r.rule_id:>4}  {r.name:<20}  {r.priority:>5}  {describe(r.matchers)} -> {targets};"
            f" group_by={','.join(r.group_by) or '-'} wait={r.group_wait_s}s "
            f"interval={r.group_interval_s}s repeat={r.repeat_interval_s}s "
            f"batch={r.max_batch} escalate={escalate}"
            f"{'  continue' if r.continues else ''}{'  (fallback)' if r.is_fallback else ''}"
            f"{'' if r.active else '  (inactive)'}"
        )
    if not rules:
        print("(no routing rules)")
    return 0


def _routes_remove(args: argparse.Namespace) -> int:
    with transaction() as conn:
        routing.remove_rule(conn, args.name)
    print(f"routing rule {args.name} removed")
    return 0


def _inhibit_add(args: argparse.Namespace) -> int:
    with transaction() as conn:
        inhibit_id = inhibition.add_inhibit_rule(
            conn, source=args.source, target=args.target, equal=_split(args.equal)
        )
    print(f"inhibition rule {inhibit_id} added")
    return 0


def _inhibit_list(args: argparse.Namespace) -> int:
    with transaction() as conn:
        rules = inhibition.list_inhibit_rules(conn)
    if args.json:
        return print_json(rules)
    print(f"{'id':>4}  source -> target (equal)")
    for r in rules:
        print(
            f"{r.inhibit_id:>4}  {describe(r.source)} -> {describe(r.target)}"
            f" (equal: {','.join(r.equal) or '-'}){'' if r.active else '  (inactive)'}"
        )
    if not rules:
        print("(no inhibition rules)")
    return 0


def _inhibit_remove(args: argparse.Namespace) -> int:
    with transaction() as conn:
        inhibition.remove_inhibit_rule(conn, args.inhibit_id)
    print(f"inhibition rule {args.inhibit_id} removed")
    return 0


def _whole(low: int, high: int) -> "argparse._ActionType":
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}-{high}, got {value}")
        return value

    return parse


_ID = _whole(1, 2**63 - 1)
_SECONDS = _whole(0, routing.MAX_SECONDS)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    ack = sub.add_parser("ack", help="acknowledge a firing alert")
    ack.add_argument("alert_id", type=_ID)
    ack.add_argument("--by", default="cli", help="who acknowledges (default: cli)")
    ack.set_defaults(handler=_ack)

    resolve = sub.add_parser("resolve", help="resolve an alert (sends resolved notifications)")
    resolve.add_argument("alert_id", type=_ID)
    resolve.add_argument("--by", default="cli")
    resolve.set_defaults(handler=_resolve)

    alerts = sub.add_parser("alerts", help="list alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True)
    listing = alerts_sub.add_parser("list", help="newest alerts first")
    listing.add_argument("--status", choices=("firing", "acknowledged", "resolved"))
    listing.add_argument("--limit", type=_whole(1, 100000), default=50)
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    raising = alerts_sub.add_parser("raise", help="raise an alert (labels and annotations)")
    raising.add_argument(
        "--label", action="append", default=[], metavar="NAME=VALUE", required=True
    )
    raising.add_argument("--annotation", action="append", default=[], metavar="NAME=VALUE")
    add_json_flag(raising)
    raising.set_defaults(handler=_raise)

    routes = sub.add_parser("routes", help="routing rules")
    routes_sub = routes.add_subparsers(dest="routes_command", metavar="COMMAND", required=True)
    add = routes_sub.add_parser("add", help="add a routing rule")
    add.add_argument("name")
    add.add_argument("--match", action="append", default=[], metavar="MATCHER", help=_MATCH_HELP)
    add.add_argument("--severity", default="ALL", help="shorthand: INFO, WARNING, CRITICAL, ALL")
    add.add_argument("--alert-type", default="ALL", help="shorthand: alert_type=VALUE")
    add.add_argument("--operation", default="ALL", help="shorthand: operation_type=VALUE")
    add.add_argument("--webhooks", help="comma-separated webhook names (receivers)")
    add.add_argument("--kinds", help="comma-separated kinds: every active webhook of each")
    add.add_argument(
        "--continue",
        dest="continue_",
        action="store_true",
        help="keep matching later rules after this one (Alertmanager's continue)",
    )
    add.add_argument(
        "--escalate-after",
        type=_SECONDS,
        default=None,
        help="seconds (default: by severity, CRITICAL 0, WARNING 600, INFO 1800)",
    )
    add.add_argument("--group-by", help="comma-separated labels (default severity,alert_type)")
    add.add_argument("--group-wait", type=_whole(0, 86400), help="seconds; 0 sends each at once")
    add.add_argument("--group-window", type=_whole(0, 86400), help=argparse.SUPPRESS)
    add.add_argument(
        "--group-interval", type=_whole(1, 86400), default=routing.DEFAULT_GROUP_INTERVAL_S
    )
    add.add_argument("--repeat-interval", type=_SECONDS, default=routing.DEFAULT_REPEAT_INTERVAL_S)
    add.add_argument("--max-batch", type=_whole(1, 100), default=routing.DEFAULT_MAX_BATCH)
    add.add_argument("--priority", type=_whole(-(10**6), 10**6), default=100)
    add.add_argument("--fallback", action="store_true", help="use when no other rule routes")
    add.set_defaults(handler=_routes_add)
    rlist = routes_sub.add_parser("list", help="list routing rules")
    add_json_flag(rlist)
    rlist.set_defaults(handler=_routes_list)
    remove = routes_sub.add_parser("remove", help="remove a routing rule")
    remove.add_argument("name")
    remove.set_defaults(handler=_routes_remove)

    inhibit = sub.add_parser("inhibit", help="inhibition rules")
    inhibit_sub = inhibit.add_subparsers(dest="inhibit_command", metavar="COMMAND", required=True)
    iadd = inhibit_sub.add_parser("add", help="hold back target alerts while a source fires")
    iadd.add_argument("--source", action="append", default=[], metavar="MATCHER", required=True)
    iadd.add_argument("--target", action="append", default=[], metavar="MATCHER", required=True)
    iadd.add_argument("--equal", help="comma-separated labels both must share")
    iadd.set_defaults(handler=_inhibit_add)
    ilist = inhibit_sub.add_parser("list", help="list inhibition rules")
    add_json_flag(ilist)
    ilist.set_defaults(handler=_inhibit_list)
    iremove = inhibit_sub.add_parser("remove", help="remove an inhibition rule")
    iremove.add_argument("inhibit_id", type=_ID)
    iremove.set_defaults(handler=_inhibit_remove)
