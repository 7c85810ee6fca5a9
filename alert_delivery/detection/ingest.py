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


# (line number, COPY line or None, reason or None)
Item = tuple[int, str | None, str | None]


def _judge(number: int, fields: dict[str, Any], now: datetime) -> Item:
    """The slow path: the exact reason a row is refused, or its line after all."""
    try:
        return number, row_line(build_row(fields, now)), None
    except RowError as exc:
        return number, None, str(exc)


def csv_items(path: Path, handle: Iterable[str], now: datetime) -> Iterator[Item]:
    """``(line, COPY line, None)`` per valid row, ``(line, None, reason)`` per refused one."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        detail = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
        raise InvalidInput(f"bad CSV header ({detail})", where=f"{path}:1")
    width = len(header)
    i_op, i_dur, i_ts = (header.index(c) for c in REQUIRED)
    i_status = header.index("status") if "status" in header else None
    i_attrs = header.index("attributes") if "attributes" in header else None
    limit = now + MAX_FUTURE
    for values in reader:
        if not values:
            continue
        if len(values) != width:
            yield reader.line_num, None, f"expected {width} columns, got {len(values)}"
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
            yield reader.line_num, fast, None
        else:
            yield _judge(reader.line_num, dict(zip(header, values, strict=True)), now)


def jsonl_items(handle: Iterable[str], now: datetime) -> Iterator[Item]:
    """As :func:`csv_items`, one JSON object per line."""
    limit = now + MAX_FUTURE
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError:
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
    now = now or datetime.now(UTC)
    report = LoadReport(file=str(path), strict=strict)
    try:
        with path.open(encoding="utf-8", newline="") as handle, conn.transaction():
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
