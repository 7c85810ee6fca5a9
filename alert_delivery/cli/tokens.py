"""`alert-delivery tokens`: API tokens for `serve` (add prints the token alone on stdout)."""

import argparse
import sys

from alert_delivery.api.tokens import (
    DEFAULT_RATE_PER_S,
    SCOPES,
    add_token,
    list_tokens,
    revoke_token,
)
from alert_delivery.db import connect, resolve_database_url


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("tokens", help="API tokens for `alert-delivery serve`")
    tsub = p.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    add = tsub.add_parser("add", help="create a token; prints it alone on stdout, once")
    add.add_argument("name")
    add.add_argument("--scope", required=True, choices=SCOPES)
    add.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE_PER_S,
        help=f"requests per second this token may make ({DEFAULT_RATE_PER_S:g})",
    )
    add.set_defaults(handler=cmd_add)
    ls = tsub.add_parser("list", help="live tokens (names and scopes, never the tokens)")
    ls.add_argument("--all", action="store_true", help="include revoked tokens")
    ls.set_defaults(handler=cmd_list)
    rv = tsub.add_parser("revoke", help="revoke the live token of that name")
    rv.add_argument("name")
    rv.set_defaults(handler=cmd_revoke)


def cmd_add(args: argparse.Namespace) -> int:
    with connect(resolve_database_url(), autocommit=True) as conn:
        token = add_token(conn, args.name, args.scope, rate_per_s=args.rate)
    print(token, flush=True)
    print(f"token {args.name!r} ({args.scope}) created; it is shown only now", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with connect(resolve_database_url(), autocommit=True) as conn:
        rows = list_tokens(conn, include_revoked=args.all)
    if not rows:
        print("no tokens (alert-delivery tokens add NAME --scope ingest|read|admin)")
        return 0
    print(f"{'NAME':<24} {'SCOPE':<7} {'RATE/S':>8}  {'CREATED':<20} REVOKED")
    for r in rows:
        revoked = r.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if r.revoked_at else "-"
        print(
            f"{r.name:<24} {r.scope:<7} {r.rate_per_s:>8g}  "
            f"{r.created_at.strftime('%Y-%m-%d %H:%M:%S'):<20} {revoked}"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with connect(resolve_database_url(), autocommit=True) as conn:
        revoke_token(conn, args.name)
    print(f"token {args.name!r} revoked (the server refuses it within 2 s)")
    return 0
