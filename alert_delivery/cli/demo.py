"""``alert-delivery demo``: what ``make run`` runs (see ``alert_delivery.demo``)."""

import argparse


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    demo = sub.add_parser(
        "demo", help="run the pipeline end to end on the embedded database (what `make run` does)"
    )
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from alert_delivery.demo import run_demo

    return run_demo()
