"""Numeric webhook settings: refused in the CLI, the Python API and the table (0009)."""

import math

import psycopg
import pytest

from alert_delivery.cli import main
from alert_delivery.config import Settings
from alert_delivery.db.migrations import discover, upgrade
from alert_delivery.delivery.registry import add_webhook
from alert_delivery.errors import InvalidInput
from tests.support.delivery import delivery_env

__all__ = ["delivery_env"]

ADD = ("webhooks", "add", "x", "--kind", "webhook", "--url", "http://127.0.0.1:9/h")


@pytest.mark.parametrize(
    ("flag", "where"),
    [
        ("--rate-limit=nan", "--rate-limit"),
        ("--rate-limit=inf", "--rate-limit"),
        ("--rate-limit=-inf", "--rate-limit"),
        ("--rate-limit=1e999", "--rate-limit"),
        ("--rate-limit=-1", "--rate-limit"),
        ("--rate-limit=0", "--rate-limit"),
        ("--rate-limit=1e-300", "--rate-limit"),
        ("--rate-limit=1e12", "--rate-limit"),
        ("--retry-schedule=-5", "--retry-schedule"),
        ("--retry-schedule=5,,30", "--retry-schedule"),
        ("--retry-schedule=99999999999999999999", "--retry-schedule"),
        ("--retry-schedule=1e3", "--retry-schedule"),
        ("--retry-schedule=nan", "--retry-schedule"),
        ("--retry-schedule=" + ",".join(["1"] * 101), "--retry-schedule"),
        ("--retry-schedule=604801", "--retry-schedule"),
    ],
)
def test_cli_refuses_bad_numbers_with_one_line(
    db_url: str,
    delivery_env: Settings,
    conn: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    where: str,
) -> None:
    code = main([*ADD, flag])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if not line.startswith("alert-delivery: WARNING")]
    assert code == 2 and len(lines) == 1 and where in lines[0], err
    assert "Traceback" not in err
    assert conn.execute("SELECT count(*) FROM alert_delivery.webhooks").fetchone() == (0,)


@pytest.mark.parametrize("rate", [math.nan, math.inf, -math.inf, -1.0, 0.0, 1e6])
def test_api_refuses_bad_rates(db_url: str, delivery_env: Settings, rate: float) -> None:
    with pytest.raises(InvalidInput, match="--rate-limit"):
        add_webhook(
            db_url, name="x", kind="webhook", url="http://127.0.0.1:9/h", rate_limit_per_s=rate
        )


@pytest.mark.parametrize("schedule", [[], [-1], [1.5], [True], [10**12], [0] * 101])
def test_api_refuses_bad_schedules(
    db_url: str, delivery_env: Settings, schedule: list[int]
) -> None:
    with pytest.raises(InvalidInput, match="--retry-schedule"):
        add_webhook(
            db_url,
            name="x",
            kind="webhook",
            url="http://127.0.0.1:9/h",
            retry_schedule_s=schedule,
        )


def test_good_values_are_stored(
    db_url: str, delivery_env: Settings, conn: psycopg.Connection
) -> None:
    add_webhook(
        db_url,
        name="x",
        kind="webhook",
        url="http://127.0.0.1:9/h",
        rate_limit_per_s=0.001,
        retry_schedule_s=[0, 604800],
    )
    row = conn.execute(
        "SELECT rate_limit_per_s, retry_schedule_s FROM alert_delivery.webhooks"
    ).fetchone()
    assert row == (0.001, [0, 604800])


@pytest.mark.parametrize(
    "assignment",
    [
        "rate_limit_per_s = 'NaN'",
        "rate_limit_per_s = 'Infinity'",
        "rate_limit_per_s = 1e9",
        "retry_schedule_s = '{}'",
        "retry_schedule_s = '{5,NULL}'",
        "retry_schedule_s = '{{1,2},{3,4}}'",
        "retry_schedule_s = '{-1}'",
    ],
)
def test_table_refuses_what_sql_writes(conn: psycopg.Connection, assignment: str) -> None:
    conn.execute(
        "INSERT INTO alert_delivery.webhooks (name, kind, url_redacted) VALUES ('w', 'webhook', '')"
    )
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(f"UPDATE alert_delivery.webhooks SET {assignment}".encode())


def test_0009_repairs_existing_rows_and_notes_it(empty_db_url: str) -> None:
    before = max(m.version for m in discover() if m.version < 9)
    rows = [
        ("nan", "'NaN'", "NULL", 10.0, None),
        ("inf", "'Infinity'", "NULL", 10.0, None),
        ("huge", "1e9", "NULL", 100000.0, None),
        ("slow", "0.0001", "NULL", 0.001, None),
        ("empty", "5", "'{}'", 5.0, None),
        ("nulls", "5", "'{5,NULL}'", 5.0, None),
        ("fine", "5", "'{5,30}'", 5.0, [5, 30]),
    ]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        upgrade(conn, target=before)
        for name, rate, schedule, _, _ in rows:
            conn.execute(
                "INSERT INTO alert_delivery.webhooks (name, kind, rate_limit_per_s,"
                f" retry_schedule_s) VALUES ('{name}', 'webhook', {rate}, {schedule})".encode()
            )
        conn.execute("UPDATE alert_delivery.webhook_health SET tokens = 'NaN', tokens_at = now()")
        upgrade(conn)
        got = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT w.name, w.rate_limit_per_s, w.retry_schedule_s, w.disabled_reason,"
                " h.tokens FROM alert_delivery.webhooks w JOIN alert_delivery.webhook_health h"
                " USING (webhook_id)"
            ).fetchall()
        }
        logged = conn.execute(
            "SELECT count(*) FROM alert_delivery.delivery_log WHERE event = 'config_repaired'"
        ).fetchone()
    for name, _, _, rate, schedule in rows:
        got_rate, got_schedule, note, tokens = got[name]
        assert (got_rate, got_schedule) == (rate, schedule), name
        assert tokens is None, name
        if name == "fine":
            assert note is None
        else:
            assert note and "migration 0009" in note, name
    assert logged == (len(rows) - 1,)
