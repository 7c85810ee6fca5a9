"""``alert-delivery metrics baselines`` and ``metrics detect`` on a real database."""

import psycopg
import pytest

from alert_delivery.cli import main
from alert_delivery.detection.synthetic import Spike
from tests.support.detection import HOUR, NOW, load

LAST = NOW - HOUR


def test_baselines_and_detect_commands(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        load(conn, rows_per_hour=20, spikes=[Spike("merge", LAST, 4.0)])
    assert main(["metrics", "baselines", "--window-end", NOW.isoformat()]) == 0
    assert "succeeded: 6 updated, 0 kept, 0 skipped, 0 failed" in capsys.readouterr().out
    start = (NOW - 2 * HOUR).isoformat()
    assert main(["metrics", "detect", "--start", start, "--end", NOW.isoformat()]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(f"{LAST.isoformat()}: ") and "1 CRITICAL" in lines[1]
    assert lines[1].endswith("15 pairs, 0 bottlenecks")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            b"SELECT operation_type FROM alert_delivery.anomalies WHERE severity = 'CRITICAL'"
        ).fetchall()
        assert rows == [("merge",)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["metrics", "baselines", "--window-days", "0"], "window_days: must be between 1 and 365"),
        (["metrics", "baselines", "--window-end", "soon"], "--window-end: not an ISO 8601 time"),
        (["metrics", "detect", "--start", "2026-03-10T11:30:00"], "--start: must be a whole hour"),
        (["metrics", "detect", "--start", "x"], "--start: not an ISO 8601 time"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    db_url: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
