"""Fuzzing of metrics files through the real loader and COPY: either rows load (exactly the ones
reported) or a one-line InvalidInput names the file and line, and then nothing was written.

Derandomized and bounded: the same examples every run.
"""

import csv
import io
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alert_delivery.detection.ingest import load_file
from alert_delivery.detection.rows import COLUMNS
from alert_delivery.errors import InvalidInput

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    # One database for all examples of a test; each example checks the row count it changed.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_names = itertools.count()

durations = st.one_of(
    st.floats(min_value=0, max_value=1e6),
    st.sampled_from(
        [
            "12.5",
            " 7 ",
            "1_000",
            "1e-400",
            "1e-320",
            "4.9e-324",
            "1e308",
            "1e309",
            "nan",
            "-0",
            "+5",
            ".5",
            "7.",
            "0x10",
            "\u0661\u0662",
            "\uff11\uff12",
            "12\u2003",
            "",
            "1" * 400,
        ]
    ),
    st.integers(min_value=0, max_value=10**30).map(str),
    st.text(max_size=6),
)
stamps = st.one_of(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2026, 3, 10), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2026-03-10T11:00:00+00:00",
            "2026-03-10 11:00:00Z",
            "2026-03-10T11:00:00,5",
            "2026-03-10T11:00:00.1234567",
            "2026-03-10T11:00:00+05:30:15",
            "2026-03-10T11:00:00.5+05:30:15.5",
            "0001-01-01T00:00:00+14:00",
            "0001-01-01T00:00:00",
            "2026-03-10",
            "20260310T110000",
            "2026-W10-2",
            "2026-03-10T11",
            "9999-12-31T23:59:59-14:00",
            "2026-03-10T11:00:00+2400",
            "2026-W10-2T11:00:00",
            "2026-03-10T11:00:00+053015",
            "2026-03-10T11:00:00.1234567+05",
            "2026-03-10T11:00:00+05",
            "2026-03-10T11:00:00.5-0130",
            "not a time",
            "",
        ]
    ),
    st.text(max_size=25),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["merge", " merge ", "a\\b", "tab\there", "nul\x00", "\ud800", "é", "\t", ""]),
)
attributes = st.one_of(
    st.just(""),
    st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), st.floats())).map(
        lambda d: json.dumps(d, ensure_ascii=False)
    ),
    st.sampled_from(['{"a": "\\u0000"}', '{"a": "\\ud800"}', '{"a": NaN}', "[1]", "{", '{"a":1}']),
    st.text(max_size=10),
)
row = st.fixed_dictionaries(
    {"operation_type": texts, "duration_ms": durations, "recorded_at": stamps},
    optional={"status": texts, "attributes": attributes},
)


def write(tmp_path: Path, suffix: str, text: str) -> Path:
    path = tmp_path / f"fuzz{next(_names)}{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


def count(conn: psycopg.Connection) -> int:
    found = conn.execute("SELECT count(*) FROM alert_delivery.performance_metrics").fetchone()
    assert found is not None
    return int(found[0])


def check_load(conn: psycopg.Connection, path: Path, strict: bool) -> None:
    before = count(conn)
    try:
        report = load_file(conn, path, strict=strict, now=NOW)
    except InvalidInput as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith(str(path)), text
        assert count(conn) == before, "a refused file wrote rows"
        return
    assert count(conn) - before == report.loaded
    if strict and report.rejected:
        assert report.loaded == 0
    for rejection in report.rejected:
        assert rejection.line >= 1 and "\n" not in rejection.reason


def csv_text(rows: list[dict[str, Any]], header: list[str]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    for r in rows:
        writer.writerow([str(r.get(c, "")) for c in header])
    return out.getvalue()


@FUZZ
@example(rows=[{"operation_type": "m", "duration_ms": "\u0661\u0662", "recorded_at": "2026-03-10"}])
@example(rows=[{"operation_type": "m", "duration_ms": 1, "recorded_at": "2026-03-10T11:00:00,5"}])
@example(
    rows=[{"operation_type": "m", "duration_ms": 1, "recorded_at": "0001-01-01T00:00:00+14:00"}]
)
@example(rows=[{"operation_type": "m", "duration_ms": 1, "recorded_at": "2026-W10-2T11:00:00"}])
@given(rows=st.lists(row, min_size=1, max_size=5))
def test_csv_files(conn: psycopg.Connection, tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    header = [c for c in COLUMNS if any(c in r for r in rows) or c in COLUMNS[:3]]
    text = csv_text(rows, header)
    if "\ud800" in text:
        return  # a CSV file is UTF-8 on disk; the loader's "not UTF-8" path is tested elsewhere
    path = write(tmp_path, ".csv", text)
    check_load(conn, path, strict=False)
    check_load(conn, path, strict=True)


json_values = st.one_of(
    row,
    st.fixed_dictionaries(
        {
            "operation_type": st.one_of(texts, st.integers(), st.none()),
            "duration_ms": st.one_of(
                st.floats(),
                st.integers(min_value=-(10**400), max_value=10**400),
                st.sampled_from([10**400, -(10**400), True, None]),
                durations,
            ),
            "recorded_at": st.one_of(stamps, st.integers(), st.none()),
        },
        optional={
            "status": st.one_of(texts, st.integers()),
            "attributes": st.one_of(attributes, st.dictionaries(st.text(max_size=4), texts)),
        },
    ),
)


@FUZZ
@example(lines=[{"operation_type": "m", "duration_ms": 10**400, "recorded_at": "2026-03-10"}])
@example(lines=[{"operation_type": "\ud800", "duration_ms": 1, "recorded_at": "2026-03-10"}])
@given(lines=st.lists(json_values, min_size=1, max_size=5))
def test_jsonl_files(conn: psycopg.Connection, tmp_path: Path, lines: list[dict[str, Any]]) -> None:
    text = "\n".join(json.dumps(v) for v in lines) + "\n"
    path = write(tmp_path, ".jsonl", text)
    check_load(conn, path, strict=False)
    check_load(conn, path, strict=True)


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_arbitrary_bytes(
    conn: psycopg.Connection, tmp_path: Path, data: bytes, suffix: str
) -> None:
    path = tmp_path / f"fuzz{next(_names)}{suffix}"
    path.write_bytes(data)
    check_load(conn, path, strict=False)
