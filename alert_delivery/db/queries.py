"""Named SQL blocks loaded once from ``sql/queries/<module>.sql``.

A block starts with ``-- name: NAME`` and runs until the next such line.
"""

import re
from functools import cache
from pathlib import Path
from typing import LiteralString

_NAME = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)


def sql_dir() -> Path:
    """``alert_delivery/sql`` in an installed wheel; the repository's ``sql/`` when editable."""
    packaged = Path(__file__).resolve().parent.parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "sql"


@cache
def load_module(module: str) -> dict[str, str]:
    text = (sql_dir() / "queries" / f"{module}.sql").read_text()
    blocks: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        if match.group(1) in blocks:
            raise ValueError(f"sql/queries/{module}.sql: query {match.group(1)!r} defined twice")
        blocks[match.group(1)] = body
    return blocks


def query(module: str, name: str) -> LiteralString:
    """The SQL text of block ``name`` in ``sql/queries/<module>.sql``.

    Typed ``LiteralString`` because it comes from files shipped with the package, never from input.
    """
    try:
        return load_module(module)[name]
    except KeyError:
        raise KeyError(f"no query {name!r} in sql/queries/{module}.sql") from None
