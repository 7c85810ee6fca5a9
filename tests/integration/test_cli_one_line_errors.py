"""Inputs that gave a traceback or a silent success: each is one line and exit 2 now."""

import socket
from pathlib import Path

import psycopg
import pytest

from alert_delivery.cli import main
from alert_delivery.config import Settings
from tests.support.delivery import delivery_env

__all__ = ["delivery_env"]

HEADER = "operation_type,duration_ms,recorded_at\n"
ROW = "merge,12.5,2026-01-01T00:00:00+00:00\n"


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("alert-delivery: WARNING")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def metric_rows(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM alert_delivery.performance_metrics").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dlq", "replay", "999999"], "no dead delivery 999999"),
        (["dlq", "replay", "999999", "999998"], "no dead deliveries 999999, 999998"),
        (["dlq", "replay", "99999999999999999999"], "not a delivery id"),
        (["dlq", "replay", "0"], "not a delivery id"),
        (["dlq", "list", "--limit", "99999999999999999999"], "--limit"),
        (["dlq", "list", "--limit", "0"], "--limit"),
        (["worker", "--poll-interval", "nan"], "--poll-interval"),
        (["worker", "--lease", "inf"], "--lease"),
        (["worker", "--read-timeout", "1e308"], "--read-timeout"),
        (["worker", "--concurrency", "0"], "--concurrency"),
    ],
)
def test_flags(
    db_url: str,
    delivery_env: Settings,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert message in one_line(capsys, argv)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "the file is empty"),
        ("empty.jsonl", "", "the file is empty"),
        ("blank.jsonl", "\n  \n\n", "the file is empty"),
        ("bom.csv", "\ufeff", "the file is empty"),
        (
            "dup.csv",
            "operation_type,duration_ms,recorded_at,duration_ms\n",
            "duplicated duration_ms",
        ),
        ("big.csv", HEADER + ROW + 'merge,"' + "x" * (129 * 1024) + '",x\n', "longer than"),
        ("blankname.csv", "operation_type,duration_ms,recorded_at,\n", "unknown ''"),
    ],
)
def test_metrics_files(
    db_url: str,
    conn: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    line = one_line(capsys, ["metrics", "load", str(path)])
    assert message in line and str(path) in line, line
    assert metric_rows(conn) == 0, "nothing of a refused file loads"


def test_a_byte_order_mark_is_not_part_of_the_header(
    db_url: str, conn: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, text in (
        ("bom.csv", HEADER + ROW),
        ("bom.jsonl", '{"operation_type":"merge","duration_ms":1,"recorded_at":"2026-01-01"}\n'),
    ):
        path = tmp_path / name
        path.write_text("\ufeff" + text, encoding="utf-8")
        assert main(["metrics", "load", str(path)]) == 0, capsys.readouterr().err
    assert metric_rows(conn) == 2


def test_ui_on_a_taken_port_starts_nothing(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: started.append(a))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(capsys, ["ui", "--port", str(port)])
    assert f"--port: cannot listen on 127.0.0.1:{port}" in line
    assert started == []
    assert "not a port" in one_line(capsys, ["ui", "--port", "70000"])
