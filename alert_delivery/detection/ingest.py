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

from alert_delivery.detection.rows import COLUMNS, REQUIRED, MetricRow, RowError, build_row
from alert_delivery.errors import InvalidInput

Format = Literal["csv", "jsonl"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_COPY = (
    "COPY alert_delivery.performance_metrics"
    " (operation_type, duration_ms, status, recorded_at, attributes) FROM STDIN"
)


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


def _csv_rows(path: Path, handle: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
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
    for values in reader:
        if not values:
            continue
        if len(values) != width:
            yield reader.line_num, f"expected {width} columns, got {len(values)}"
        else:
            yield reader.line_num, dict(zip(header, values, strict=True))


def _jsonl_rows(handle: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            yield number, "not valid JSON"
            continue
        if not isinstance(value, dict):
            yield number, "not a JSON object"
            continue
        missing = [c for c in REQUIRED if c not in value]
        unknown = [c for c in value if c not in COLUMNS]
        if missing:
            yield number, f"missing field(s): {', '.join(missing)}"
        elif unknown:
            yield number, f"unknown field(s): {', '.join(sorted(unknown))}"
        else:
            yield number, value


def _copy_values(row: MetricRow) -> tuple[str, float, str, datetime, str]:
    attributes = json.dumps(row.attributes) if row.attributes else "{}"
    return row.operation_type, row.duration_ms, row.status, row.recorded_at, attributes


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
            rows = _csv_rows(path, handle) if kind == "csv" else _jsonl_rows(handle)
            with conn.cursor().copy(_COPY) as copy:
                for line, item in rows:
                    if isinstance(item, str):
                        report.rejected.append(Rejection(str(path), line, item))
                        continue
                    try:
                        row = build_row(item, now)
                    except RowError as exc:
                        report.rejected.append(Rejection(str(path), line, str(exc)))
                        continue
                    copy.write_row(_copy_values(row))
                    report.loaded += 1
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
        for row in rows:
            copy.write_row(_copy_values(row))
            count += 1
    return count
