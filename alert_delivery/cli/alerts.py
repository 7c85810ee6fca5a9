"""`alert-delivery ack / resolve / alerts list / routes ...`: alert lifecycle and routing rules."""

import argparse

from alert_delivery.alerting import lifecycle, routing
from alert_delivery.db import transaction


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
    print(f"{'id':>7}  {'severity':<8}  {'status':<12}  {'held':<9}  {'operation':<20}  title")
    for a in rows:
        print(
            f"{a.alert_id:>7}  {a.severity:<8}  {a.status:<12}  {a.held_reason or '-':<9}  "
            f"{a.operation_type[:20]:<20}  {a.title[:60]}"
        )
    return 0


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _routes_add(args: argparse.Namespace) -> int:
    with transaction() as conn:
        rule_id = routing.add_rule(
            conn,
            args.name,
            severity=args.severity,
            alert_type=args.alert_type,
            operation_type=args.operation,
            webhooks=_split(args.webhooks),
            kinds=_split(args.kinds),
            escalate_after_s=args.escalate_after,
            group_window_s=args.group_window,
            priority=args.priority,
            fallback=args.fallback,
        )
    print(f"routing rule {rule_id} ({args.name}) added")
    return 0


def _routes_list(args: argparse.Namespace) -> int:
    with transaction() as conn:
        rules = routing.list_rules(conn)
    for r in rules:
        targets = ",".join([*r.target_kinds, *(f"@{w}" for w in r.webhooks)]) or "-"
        print(
            f"{r.rule_id:>4}  {r.name:<20}  prio={r.priority:<4}  {r.severity:<8}  "
            f"type={r.alert_type}  op={r.operation_type}  -> {targets}  "
            f"escalate={r.escalate_after_s}s group={r.group_window_s}s"
            f"{'  (fallback)' if r.is_fallback else ''}{'' if r.active else '  (inactive)'}"
        )
    return 0


def _routes_remove(args: argparse.Namespace) -> int:
    with transaction() as conn:
        routing.remove_rule(conn, args.name)
    print(f"routing rule {args.name} removed")
    return 0


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    ack = sub.add_parser("ack", help="acknowledge a firing alert")
    ack.add_argument("alert_id", type=int)
    ack.add_argument("--by", default="cli", help="who acknowledges (default: cli)")
    ack.set_defaults(handler=_ack)

    resolve = sub.add_parser("resolve", help="resolve an alert (sends resolved notifications)")
    resolve.add_argument("alert_id", type=int)
    resolve.add_argument("--by", default="cli")
    resolve.set_defaults(handler=_resolve)

    alerts = sub.add_parser("alerts", help="list alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True)
    listing = alerts_sub.add_parser("list", help="newest alerts first")
    listing.add_argument("--status", choices=("firing", "acknowledged", "resolved"))
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=_list)

    routes = sub.add_parser("routes", help="routing rules")
    routes_sub = routes.add_subparsers(dest="routes_command", metavar="COMMAND", required=True)
    add = routes_sub.add_parser("add", help="add a routing rule")
    add.add_argument("name")
    add.add_argument("--severity", default="ALL", help="ALL, INFO, WARNING or CRITICAL")
    add.add_argument("--alert-type", default="ALL")
    add.add_argument("--operation", default="ALL")
    add.add_argument("--webhooks", help="comma-separated webhook names")
    add.add_argument("--kinds", help="comma-separated kinds: every active webhook of each")
    add.add_argument("--escalate-after", type=_non_negative, default=0, help="seconds")
    add.add_argument("--group-window", type=_non_negative, default=None, help="seconds")
    add.add_argument("--priority", type=int, default=100)
    add.add_argument("--fallback", action="store_true", help="use when no other rule routes")
    add.set_defaults(handler=_routes_add)
    routes_sub.add_parser("list", help="list routing rules").set_defaults(handler=_routes_list)
    remove = routes_sub.add_parser("remove", help="remove a routing rule")
    remove.add_argument("name")
    remove.set_defaults(handler=_routes_remove)
