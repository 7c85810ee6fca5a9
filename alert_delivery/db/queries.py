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


def compact(sql: str) -> str:
    """``sql`` without its ``--`` comments and with each run of whitespace made one space (or one
    newline, if it held one), quoted text untouched. psycopg re-parses every query over 4,096
    bytes on each execute (its cache skips them): the claim (10.7 kB with comments) cost ~6 % of
    the worker's CPU in that parse at 200 deliveries/s. Refuses a dollar quote or E'' string,
    which it does not read."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = sql.index(c, i + 1)
            while j + 1 < n and sql[j + 1] == c:  # a doubled quote stays inside the literal
                j = sql.index(c, j + 2)
            out.append(sql[i : j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif c.isspace():
            start = i
            while i < n and sql[i].isspace():
                i += 1
            # A newline stays one: two literals with one between them are one literal.
            gap = "\n" if "\n" in sql[start:i] else " "
            if out and out[-1].isspace():
                out[-1] = "\n" if "\n" in (out[-1], gap) else " "
            elif out:
                out.append(gap)
        else:
            if c == "$" or (c in "Ee" and sql.startswith("'", i + 1)):
                raise ValueError(
                    f"compact() does not read dollar quotes or E'' strings: {sql[i : i + 20]!r}"
                )
            out.append(c)
            i += 1
    return "".join(out).strip()


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
        blocks[match.group(1)] = compact(body)
    return blocks


def query(module: str, name: str) -> LiteralString:
    """The SQL text of block ``name`` in ``sql/queries/<module>.sql``.

    Typed ``LiteralString`` because it comes from files shipped with the package, never from input.
    """
    try:
        return load_module(module)[name]
    except KeyError:
        raise KeyError(f"no query {name!r} in sql/queries/{module}.sql") from None


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@cache
def raw_query(module: str, name: str) -> tuple[str, tuple[str, ...]]:
    """Block ``name`` with ``$n`` placeholders for a raw cursor, and the parameter names in
    ``$n`` order. psycopg parses a named-placeholder query over 4,096 bytes again on every
    execute (87 us for the claim, 6.4 kB compacted); a raw query is sent as it is."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%"
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _PLACEHOLDER.sub(number, query(module, name)), tuple(names)
