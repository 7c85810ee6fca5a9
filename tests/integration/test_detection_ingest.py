"""Ingestion through COPY: bad rows are refused by file and line, the rest loads; the CLI."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from alert_delivery.cli import main
from alert_delivery.detection import ingest
from alert_delivery.detection.ingest import load_file
from alert_delivery.errors import InvalidInput

# A fixed "now", injected as the loader's clock: with the wall clock read at import, a suite
# running longer than 5 minutes let the "future" row load.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OK_TS = (NOW - timedelta(hours=1)).isoformat()
FUTURE_TS = (NOW + timedelta(minutes=10)).isoformat()

CSV_LINES = [
    "operation_type,duration_ms,recorded_at,status,attributes",
    f'merge,12.5,{OK_TS},success,"{{""repo"": ""core""}}"',
    f",3,{OK_TS},success,",
    f"commit,-1,{OK_TS},success,",
    f"commit,NaN,{OK_TS},success,",
    f"commit,inf,{OK_TS},success,",
    f"commit,fast,{OK_TS},success,",
    "commit,3,not-a-time,success,",
    f"commit,3,{FUTURE_TS},success,",
    f"commit,3,{OK_TS}",
    f"commit,3,{OK_TS},success,{{}},extra",
    f"wal_flush,0,{OK_TS},conflict,",
    "",
    f"branch_create,4.25,{OK_TS},,",
]
EXPECTED = {
    3: "operation_type is empty",
    4: "duration_ms is negative",
    5: "duration_ms is NaN",
    6: "duration_ms is infinite",
    7: "duration_ms is not a number",
    8: "recorded_at is not an ISO 8601 timestamp",
    9: "more than 5 minutes in the future",
    10: "expected 5 columns, got 3",
    11: "expected 5 columns, got 6",
}


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "utc_now", lambda: NOW)


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def count(conn: psycopg.Connection) -> int:
    row = conn.execute(b"SELECT count(*) FROM alert_delivery.performance_metrics").fetchone()
    return int(row[0]) if row else -1


def test_csv_loads_valid_rows_and_reports_each_bad_one(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = write(tmp_path, "metrics.csv", CSV_LINES)
    report = load_file(conn, path)
    assert report.loaded == 3
    assert {r.line: r.reason for r in report.rejected}.keys() == EXPECTED.keys()
    for rejection in report.rejected:
        assert rejection.file == str(path)
        assert EXPECTED[rejection.line] in rejection.reason
        assert str(rejection).startswith(f"{path}:{rejection.line}: ")
    rows = conn.execute(
        b"SELECT operation_type, duration_ms, status, attributes"
        b" FROM alert_delivery.performance_metrics ORDER BY operation_type"
    ).fetchall()
    assert rows == [
        ("branch_create", 4.25, "success", {}),
        ("merge", 12.5, "success", {"repo": "core"}),
        ("wal_flush", 0.0, "conflict", {}),
    ]


def test_strict_rejects_the_whole_file_and_keeps_existing_data(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    good = write(tmp_path, "good.csv", [CSV_LINES[0], CSV_LINES[1]])
    assert load_file(conn, good, strict=True).loaded == 1
    report = load_file(conn, write(tmp_path, "bad.csv", CSV_LINES), strict=True)
    assert report.loaded == 0
    assert len(report.rejected) == len(EXPECTED)
    assert count(conn) == 1


def test_jsonl_rows(conn: psycopg.Connection, tmp_path: Path) -> None:
    good = {"operation_type": "merge", "duration_ms": 10, "recorded_at": OK_TS}
    lines = [
        json.dumps(good | {"status": "conflict", "attributes": {"files": 3}}),
        "{broken",
        "[1, 2]",
        json.dumps({"operation_type": "merge", "duration_ms": 1}),
        json.dumps(good | {"colour": "red"}),
        json.dumps(good | {"duration_ms": -3}),
        json.dumps(good | {"duration_ms": "NaN"}),
        json.dumps(good | {"operation_type": ""}),
        "",
        json.dumps(good),
    ]
    report = load_file(conn, write(tmp_path, "m.jsonl", lines))
    assert report.loaded == 2
    reasons = {r.line: r.reason for r in report.rejected}
    assert reasons == {
        2: "not valid JSON",
        3: "not a JSON object",
        4: "missing field(s): recorded_at",
        5: "unknown field(s): colour",
        6: "duration_ms is negative: -3",
        7: "duration_ms is NaN",
        8: "operation_type is empty",
    }
    attrs = conn.execute(
        b"SELECT attributes FROM alert_delivery.performance_metrics WHERE status = 'conflict'"
    ).fetchone()
    assert attrs == ({"files": 3},)


def test_file_level_mistakes_raise_invalid_input(conn: psycopg.Connection, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        load_file(conn, tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="unknown format"):
        load_file(conn, write(tmp_path, "m.txt", CSV_LINES))
    with pytest.raises(InvalidInput, match=r"1: bad CSV header \(missing recorded_at\)"):
        load_file(conn, write(tmp_path, "h.csv", ["operation_type,duration_ms", "merge,1"]))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"operation_type,duration_ms,recorded_at\nm\xe9rge,1," + OK_TS.encode())
    with pytest.raises(InvalidInput, match="not UTF-8"):
        load_file(conn, latin)
    assert count(conn) == 0


def test_plain_sql_inserts_work_too(conn: psycopg.Connection) -> None:
    conn.execute(
        b"INSERT INTO alert_delivery.performance_metrics (operation_type, duration_ms, recorded_at)"
        b" VALUES ('merge', 5, now())"
    )
    assert count(conn) == 1


def test_cli_exit_codes_and_report(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["metrics", "load", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err and "Traceback" not in err

    assert main(["metrics", "load", str(write(tmp_path, "m.xml", CSV_LINES))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown format" in err

    path = write(tmp_path, "m.csv", CSV_LINES)
    assert main(["metrics", "load", str(path)]) == 1
    out, err = capsys.readouterr()
    assert f"{path}: loaded 3 rows, rejected 9" in out
    assert f"rejected {path}:4: duration_ms is negative: -1" in err
    assert err.count("\n") == 9

    assert main(["metrics", "load", "--strict", str(path)]) == 1
    assert "--strict: nothing loaded, 9 rows rejected" in capsys.readouterr().err

    good = write(tmp_path, "good.data", [CSV_LINES[0], CSV_LINES[1]])
    assert main(["metrics", "load", "--format", "csv", str(good)]) == 0
    assert "loaded 1 rows, rejected 0" in capsys.readouterr().out
    with psycopg.connect(db_url) as check:
        assert count(check) == 4


def test_escapes_and_unicode_survive_copy(conn: psycopg.Connection, tmp_path: Path) -> None:
    attrs = {"path": "C:\\repo\tx", "msg": "line1\nline2", "name": "café", "quote": '"q"'}
    lines = [
        json.dumps(
            {
                "operation_type": "merge\\x",
                "duration_ms": 1e-05,
                "recorded_at": OK_TS,
                "attributes": attrs,
            }
        ),
        json.dumps(
            {
                "operation_type": "merge",
                "duration_ms": 2,
                "recorded_at": OK_TS,
                "attributes": json.dumps(attrs),
            }
        ),
        json.dumps({"operation_type": "merge\u0000", "duration_ms": 2, "recorded_at": OK_TS}),
        json.dumps({"operation_type": "merge", "duration_ms": 2, "recorded_at": "2026-03-10"}),
    ]
    report = load_file(conn, write(tmp_path, "e.ndjson", lines))
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "operation_type contains a NUL character")
    ]
    rows = conn.execute(
        b"SELECT operation_type, duration_ms, attributes, recorded_at"
        b" FROM alert_delivery.performance_metrics ORDER BY metric_id"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows[:2]] == [
        ("merge\\x", 1e-05, attrs),
        ("merge", 2.0, attrs),
    ]
    assert rows[2][2] == {} and rows[2][3] == datetime(2026, 3, 10, tzinfo=UTC)


def test_unusual_number_spellings_load_as_their_value(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    spellings = [" 12 ", "1_000", "1e-400", "1E3", "0", "7."]
    lines = ["operation_type,duration_ms,recorded_at"]
    lines += [f"op{i},{text},{OK_TS}" for i, text in enumerate(spellings)]
    report = load_file(conn, write(tmp_path, "n.csv", lines))
    assert report.rejected == [] and report.loaded == len(spellings)
    got = conn.execute(
        b"SELECT duration_ms FROM alert_delivery.performance_metrics ORDER BY operation_type"
    ).fetchall()
    assert [r[0] for r in got] == [12.0, 1000.0, 0.0, 1000.0, 0.0, 7.0]
