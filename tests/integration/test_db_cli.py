"""`alert-delivery db ...` and what a bad database URL gets: one line, exit 2, no secrets."""

import subprocess
import sys

import psycopg
import pytest

from alert_delivery.cli import main
from alert_delivery.db.connection import connect
from alert_delivery.errors import DatabaseUnavailable


def test_db_status_and_upgrade_on_migrated_database(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    assert "is up to date" in capsys.readouterr().out
    assert main(["db", "status"]) == 0
    out = capsys.readouterr().out
    assert "0001_data_model.sql" in out
    assert "pending" not in out


def test_db_upgrade_applies_to_empty_database(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERT_DELIVERY_DATABASE_URL", empty_db_url)
    assert main(["db", "status"]) == 0
    assert "pending" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert "applied 0001_data_model.sql" in capsys.readouterr().out
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute(b"SELECT count(*) FROM alert_delivery.delivery_queue").fetchone() == (
            0,
        )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://alice:s3cret@127.0.0.1:1/alerts", "127.0.0.1:1/alerts"),
        ("postgresql://alice:s3cret@nohost.invalid/alerts", "nohost.invalid"),
        ("not a url at all", "<malformed URL>"),
    ],
)
def test_unreachable_or_malformed_url(url: str, expected: str) -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        connect(url, connect_timeout=2)
    message = str(info.value)
    assert message.startswith(f"cannot connect to PostgreSQL at {expected}")
    assert "s3cret" not in message
    assert "alice" not in message


def test_cli_bad_url_is_one_line_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "alert_delivery", "db", "status"],
        env={"ALERT_DELIVERY_DATABASE_URL": "postgresql://bob:hunter2@127.0.0.1:1/x", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        "alert-delivery: error: cannot connect to PostgreSQL at 127.0.0.1:1/x"
    )
    assert "Connection refused" in lines[0]
    assert "hunter2" not in proc.stderr
    assert "Traceback" not in proc.stderr
