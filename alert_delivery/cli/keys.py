"""`alert-delivery keys`: generate a Fernet key, re-encrypt everything under the first key."""

import argparse

from cryptography.fernet import Fernet

from alert_delivery.cli.output import add_json_flag, print_json
from alert_delivery.db.connection import resolve_database_url
from alert_delivery.delivery.rotation import rotate_all
from alert_delivery.delivery.secrets import configured_keys, key_id


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("keys", help="encryption keys for webhook URLs and secrets")
    s = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = s.add_parser(
        "generate", help="print a new key (prepend it to ALERT_DELIVERY_SECRET_KEYS)"
    )
    gen.set_defaults(handler=handle_generate)
    rot = s.add_parser("rotate", help="re-encrypt every stored URL and secret under the first key")
    rot.set_defaults(handler=handle_rotate)
    show = s.add_parser("list", help="fingerprints of the configured keys (never the keys)")
    add_json_flag(show)
    show.set_defaults(handler=handle_list)


def handle_generate(args: argparse.Namespace) -> int:
    print(Fernet.generate_key().decode())
    return 0


def handle_rotate(args: argparse.Namespace) -> int:
    count = rotate_all(resolve_database_url())
    first = key_id(configured_keys()[0])
    print(f"re-encrypted {count} webhook(s) under key {first}; older keys may now be removed")
    return 0


def handle_list(args: argparse.Namespace) -> int:
    if args.json:
        return print_json(
            [{"key_id": key_id(k), "encrypts": i == 0} for i, k in enumerate(configured_keys())]
        )
    for i, key in enumerate(configured_keys()):
        print(f"{key_id(key)}{'  (encrypts)' if i == 0 else ''}")
    return 0
