"""Load metrics from CSV or JSON Lines through COPY, refusing bad rows one by one.

Valid rows stream into ``COPY`` while the file is read, so memory stays flat for large files.
With ``strict`` the transaction is rolled back when any row was refused: nothing loads.
"""

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg

from alert_delivery.detection.copy_text import copy_line, row_line
from alert_delivery.detection.rows import (
    COLUMNS,
    MAX_FUTURE,
    REQUIRED,
    MetricRow,
    RowError,
    build_row,
)
from alert_delivery.errors import InvalidInput

Format = Literal["csv", "jsonl"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_COPY = (
    "COPY alert_delivery.performance_metrics"
    " (operation_type, duration_ms, status, recorded_at, attributes) FROM STDIN"
)
_BATCH = 5000


@dataclass(frozen=True)
class Rejection:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class LoadReport:
    file: str
    loaded: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    strict: bool = False

    @property
    def ok(self) -> bool:
        return not self.rejected


def detect_format(path: Path, fmt: str | None = None) -> Format:
    if fmt is not None:
        if fmt not in ("csv", "jsonl"):
            raise InvalidInput(f"unknown format {fmt!r} (use csv or jsonl)", where="--format")
        return "csv" if fmt == "csv" else "jsonl"
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"unknown format {path.suffix or '(no extension)'!r}: use .csv, .jsonl or --format",
            where=str(path),
        )
    return found


def utc_now() -> datetime:
    """The clock that bounds "in the future" when the caller passes no ``now`` (the CLI)."""
    return datetime.now(UTC)


# (line number, COPY line or None, reason or None)
Item = tuple[int, str | None, str | None]


def _judge(number: int, fields: dict[str, Any], now: datetime) -> Item:
    """The slow path: the exact reason a row is refused, or its line after all."""
    try:
        return number, row_line(build_row(fields, now)), None
    except RowError as exc:
        return number, None, str(exc)


def _csv_rows(path: Path, handle: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` per CSV record. What the csv module cannot parse is a one-line error for
    the file: its records cannot be told apart after that point, so nothing of it loads."""
    reader = csv.reader(handle)
    try:
        for values in reader:
            yield reader.line_num, values
    except csv.Error as exc:
        text = str(exc)
        if "field larger than field limit" in text:
            text = f"a field is longer than {csv.field_size_limit()} characters"
        raise InvalidInput(
            f"not readable as CSV: {text}", where=f"{path}:{reader.line_num}"
        ) from None


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) if not n or not n.isprintable() else n for n in names)


def csv_items(path: Path, handle: Iterable[str], now: datetime) -> Iterator[Item]:
    """``(line, COPY line, None)`` per valid row, ``(line, None, reason)`` per refused one."""
    rows = _csv_rows(path, handle)
    # Blank lines before the header are not the header.
    first = next(((n, r) for n, r in rows if r), None)
    if first is None:
        return
    header_line, header = first[0], [h.strip() for h in first[1]]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    twice = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or twice:
        detail = (
            f"missing {_names(missing)}"
            if missing
            else f"unknown {_names(unknown)}"
            if unknown
            else f"duplicated {_names(twice)}"
        )
        raise InvalidInput(f"bad CSV header ({detail})", where=f"{path}:{header_line}")
    width = len(header)
    i_op, i_dur, i_ts = (header.index(c) for c in REQUIRED)
    i_status = header.index("status") if "status" in header else None
    i_attrs = header.index("attributes") if "attributes" in header else None
    limit = now + MAX_FUTURE
    for line, values in rows:
        if not values:
            continue
        if len(values) != width:
            yield line, None, f"expected {width} columns, got {len(values)}"
            continue
        fast = copy_line(
            values[i_op],
            values[i_dur],
            values[i_ts],
            None if i_status is None else values[i_status],
            None if i_attrs is None else values[i_attrs],
            limit,
        )
        if fast is not None:
            yield line, fast, None
        else:
            yield _judge(line, dict(zip(header, values, strict=True)), now)


def jsonl_items(handle: Iterable[str], now: datetime) -> Iterator[Item]:
    """As :func:`csv_items`, one JSON object per line."""
    limit = now + MAX_FUTURE
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            yield number, None, "not valid JSON"
            continue
        if not isinstance(value, dict):
            yield number, None, "not a JSON object"
            continue
        missing = [c for c in REQUIRED if c not in value]
        unknown = sorted(c for c in value if c not in COLUMNS)
        if missing or unknown:
            what = f"missing field(s): {', '.join(missing)}" if missing else ""
            what = what or f"unknown field(s): {', '.join(unknown)}"
            yield number, None, what
            continue
        fast = copy_line(
            value["operation_type"],
            value["duration_ms"],
            value["recorded_at"],
            value.get("status"),
            value.get("attributes"),
            limit,
        )
        yield (number, fast, None) if fast is not None else _judge(number, value, now)


def load_file(
    conn: psycopg.Connection,
    path: str | Path,
    *,
    strict: bool = False,
    fmt: str | None = None,
    now: datetime | None = None,
) -> LoadReport:
    """Load one file; the report lists every refused row by file, line and reason."""
    path = Path(path)
    kind = detect_format(path, fmt)
    if not path.is_file():
        raise InvalidInput("no such file", where=str(path))
    if _is_blank(path):
        raise InvalidInput("the file is empty: no rows to load", where=str(path))
    now = now or utc_now()
    report = LoadReport(file=str(path), strict=strict)
    try:
        # utf-8-sig: a byte order mark (as spreadsheet exports write) is not part of the header.
        with path.open(encoding="utf-8-sig", newline="") as handle, conn.transaction():
            items = csv_items(path, handle, now) if kind == "csv" else jsonl_items(handle, now)
            with conn.cursor().copy(_COPY) as copy:
                batch: list[str] = []
                for number, line, reason in items:
                    if line is None:
                        report.rejected.append(Rejection(str(path), number, reason or "invalid"))
                        continue
                    batch.append(line)
                    if len(batch) >= _BATCH:
                        copy.write("".join(batch))
                        report.loaded += len(batch)
                        batch = []
                copy.write("".join(batch))
                report.loaded += len(batch)
            if strict and report.rejected:
                report.loaded = 0
                raise psycopg.Rollback()
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 text ({exc.reason})", where=str(path)) from None
    return report


def _is_blank(path: Path) -> bool:
    """Nothing but whitespace (and a byte order mark): reads only as far as the first text."""
    with path.open("rb") as handle:
        chunk = handle.read(65536).removeprefix(b"\xef\xbb\xbf")
        while chunk:
            if chunk.strip():
                return False
            chunk = handle.read(65536)
    return True


def load_metric_rows(conn: psycopg.Connection, rows: Iterable[MetricRow]) -> int:
    """COPY already-validated rows (synthetic data, other Python callers); returns the count."""
    count = 0
    with conn.transaction(), conn.cursor().copy(_COPY) as copy:
        batch: list[str] = []
        for row in rows:
            batch.append(row_line(row))
            if len(batch) >= _BATCH:
                copy.write("".join(batch))
                count += len(batch)
                batch = []
        copy.write("".join(batch))
        count += len(batch)
    return count
