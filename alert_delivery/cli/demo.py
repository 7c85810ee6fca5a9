"""`alert-delivery demo`: registered by its domain module (not built yet)."""

import argparse


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    return None
