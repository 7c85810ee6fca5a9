"""Machine-readable output: ``--json`` on every list and status command prints one JSON document
on stdout (nothing else), so scripts never parse the tables."""

import argparse
import dataclasses
import json
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from alert_delivery.alerting.matchers import Matcher


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the table"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Matcher):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(value: Any) -> int:
    json.dump(_plain(value), sys.stdout, ensure_ascii=False, allow_nan=False)
    sys.stdout.write("\n")
    return 0


def read_value(path: str, *, where: str) -> str:
    """A secret read from a file or ``-`` (stdin) instead of argv, where ``ps`` would show it.
    One trailing newline is dropped."""
    from alert_delivery.errors import InvalidInput

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path!r}: {exc.__class__.__name__}", where=where) from None
    text = text[:-1] if text.endswith("\n") else text
    if not text.strip():
        raise InvalidInput(f"{path!r} is empty", where=where)
    return text
