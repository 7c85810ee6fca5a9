"""``alert-delivery escalations list | run | routes add/list/remove``."""

import argparse

from alert_delivery import escalation
from alert_delivery.alerting.matchers import describe
from alert_delivery.cli.output import add_json_flag, print_json
from alert_delivery.db import transaction


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    esc = sub.add_parser(
        "escalations", help="escalations of unacknowledged alerts and stuck deliveries"
    )
    esc_sub = esc.add_subparsers(dest="escalations_command", metavar="ACTION", required=True)

    ls = esc_sub.add_parser("list", help="open escalations, then the most recently stopped")
    ls.add_argument("--limit", type=int, default=50)
    add_json_flag(ls)
    ls.set_defaults(handler=_list)

    run = esc_sub.add_parser("run", help="escalate now (what the every-minute schedule does)")
    run.set_defaults(handler=_run)

    routes = esc_sub.add_parser("routes", help="where escalations go")
    routes_sub = routes.add_subparsers(dest="routes_command", metavar="ACTION", required=True)
    add = routes_sub.add_parser("add", help="add an escalation route")
    add.add_argument("name")
    add.add_argument("--webhook", action="append", default=[], help="target webhook (repeatable)")
    add.add_argument("--kind", action="append", default=[], help="every active webhook of a kind")
    add.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="MATCHER",
        help="label matcher, repeatable: name=value, name!=value, name=~regex, name!~regex",
    )
    add.add_argument("--severity", default="ALL", help="shorthand: INFO|WARNING|CRITICAL|ALL")
    add.add_argument("--alert-type", default="ALL")
    add.add_argument("--operation", default="ALL")
    add.add_argument(
        "--reason",
        action="append",
        choices=escalation.REASONS,
        help="which escalations (repeatable; default all)",
    )
    add.set_defaults(handler=_add_route)
    rlist = routes_sub.add_parser("list", help="list escalation routes")
    add_json_flag(rlist)
    rlist.set_defaults(handler=_list_routes)
    rm = routes_sub.add_parser("remove", help="remove an escalation route")
    rm.add_argument("name")
    rm.set_defaults(handler=_remove_route)


def _list(args: argparse.Namespace) -> int:
    with transaction() as conn:
        summary = escalation.list_escalations(conn, limit=args.limit)
    if args.json:
        return print_json(summary)
    print(f"{summary.open} open, {summary.stopped} stopped, {summary.sent} levels sent")
    for row in summary.rows:
        print(
            f"{row.escalation_id:>5}  {row.state:<7} alert={row.alert_id} {row.severity or '-'} "
            f"{row.operation_type or '-'}  reason={row.reason}  level={row.level}  "
            f"next={row.next_at:%Y-%m-%dT%H:%MZ}"
            + (f"  stopped: {row.stop_reason}" if row.stopped_at else "")
        )
    return 0


def _run(args: argparse.Namespace) -> int:
    with transaction() as conn:
        actions = escalation.run_escalations(conn)
    sent = [a for a in actions if a.sent]
    print(f"{len(sent)} escalation(s) sent, {len(actions) - len(sent)} other action(s)")
    for action in actions:
        print(f"  alert {action.alert_id}: {action.reason} level {action.level} -> {action.action}")
    return 0


def _add_route(args: argparse.Namespace) -> int:
    with transaction() as conn:
        route_id = escalation.add_route(
            conn,
            args.name,
            webhooks=args.webhook,
            kinds=args.kind,
            match=args.match,
            severity=args.severity,
            alert_type=args.alert_type,
            operation_type=args.operation,
            reasons=args.reason or escalation.REASONS,
        )
    print(f"escalation route {route_id} added")
    return 0


def _list_routes(args: argparse.Namespace) -> int:
    with transaction() as conn:
        routes = escalation.list_routes(conn)
    if args.json:
        return print_json(routes)
    print(f"{'id':>4}  name  match reasons -> targets")
    if not routes:
        print("(no escalation routes)")
    for r in routes:
        targets = ", ".join([*r.webhooks, *(f"kind:{k}" for k in r.target_kinds)]) or "-"
        print(
            f"{r.route_id:>4}  {r.name}  match={describe(r.matchers)} "
            f"reasons={','.join(r.reasons)} -> {targets}" + ("" if r.active else "  (inactive)")
        )
    return 0


def _remove_route(args: argparse.Namespace) -> int:
    with transaction() as conn:
        escalation.remove_route(conn, args.name)
    print(f"escalation route {args.name!r} removed")
    return 0
