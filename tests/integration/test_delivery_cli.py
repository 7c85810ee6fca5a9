"""`alert-delivery webhooks | dlq | keys` in-process: output, exit codes, one-line errors."""

import json

import psycopg
import pytest
from cryptography.fernet import Fernet

from alert_delivery.cli import main
from alert_delivery.config import Settings
from tests.support.delivery import delivery_env, enqueue
from tests.support.receivers import Receiver, always, serve

__all__ = ["delivery_env"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_webhooks_lifecycle(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The warning comes once per process: start this test as a fresh process would.
    monkeypatch.setattr("alert_delivery.delivery.ssrf._announced", set())
    with serve(Receiver()) as rx:
        url = rx.url + "/SECRETPATH"
        code, out, err = run(capsys, "webhooks", "add", "ops", "--kind", "slack", "--url", url)
        assert code == 0 and out.strip().isdigit()
        assert "whsec_" in err and "WARNING: SSRF allow-list" in err
        code, out, _ = run(capsys, "webhooks", "list")
        assert code == 0 and "ops" in out and "http://127.0.0.1/…" in out
        assert "SECRETPATH" not in out
        code, out, _ = run(capsys, "webhooks", "test", "ops")
        assert code == 0 and "ok (200" in out
        assert rx.requests[0].headers["webhook-signature"].startswith("v1,")
        # A test notice rendered for the kind by the one formatter: Slack gets a Slack body.
        ping = json.loads(rx.requests[0].body)
        assert ping["text"] == "TEST [INFO] test: alert-delivery test of webhook ops"
        assert ping["attachments"][0]["color"] == "#36C5F0"
        tested = conn.execute(
            "SELECT last_tested_at IS NOT NULL, last_test_status FROM alert_delivery.webhooks"
        ).fetchone()
        assert tested == (True, "200 ok")
        rx.behaviour = always(500)
        code, _, err = run(capsys, "webhooks", "test", "ops")
        assert code == 1 and "HTTP 500" in err
        assert run(capsys, "webhooks", "disable", "ops")[0] == 0
        assert run(capsys, "webhooks", "list")[1].count(" no ") == 1
        assert run(capsys, "webhooks", "enable", "ops")[0] == 0
        assert run(capsys, "webhooks", "remove", "ops")[0] == 0
        assert "ops" not in run(capsys, "webhooks", "list")[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("webhooks", "add", "x", "--kind", "webhook", "--url", "https://10.0.0.1/h"),
            "private address",
        ),
        (
            (
                "webhooks",
                "add",
                "x",
                "--kind",
                "webhook",
                "--url",
                "http://127.0.0.1:9/h",
                "--secret",
                "nope",
            ),
            "whsec_",
        ),
        (
            (
                "webhooks",
                "add",
                "x",
                "--kind",
                "webhook",
                "--url",
                "http://127.0.0.1:9/h",
                "--retry-schedule",
                "5,x",
            ),
            "--retry-schedule",
        ),
        (("webhooks", "add", "x", "--kind", "email", "--url", "smtp://127.0.0.1:25"), "to"),
        (
            ("webhooks", "add", "x", "--kind", "pagerduty", "--url", "http://127.0.0.1:9/h"),
            "routing key",
        ),
        (("webhooks", "test", "missing"), "no webhook named 'missing'"),
        (("webhooks", "disable", "missing"), "no webhook named"),
        (("dlq", "replay"), "say which dead letters"),
        (("dlq", "replay", "--webhook", "missing"), "no webhook named"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    db_url: str,
    delivery_env: Settings,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = run(capsys, *argv)
    lines = [line for line in err.splitlines() if not line.startswith("alert-delivery: WARNING")]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err and "10.0.0.1/h" not in err


def test_duplicate_name_is_a_user_mistake(
    db_url: str, delivery_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("webhooks", "add", "dup", "--kind", "webhook", "--url", "http://127.0.0.1:9/h")
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args)
    assert code == 2 and "exists" in err


def test_dlq_list_and_replay_cli(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run(capsys, "webhooks", "add", "d", "--kind", "webhook", "--url", "http://127.0.0.1:9/h")
    webhook_id = int(conn.execute("SELECT webhook_id FROM alert_delivery.webhooks").fetchone()[0])  # type: ignore[index]
    ids = enqueue(conn, webhook_id, [{"i": 1}, {"i": 2}])
    conn.execute(
        "UPDATE alert_delivery.delivery_queue SET status = 'dead', dead_at = now(),"
        " last_status = 404, last_error = 'HTTP 404'"
    )
    code, out, _ = run(capsys, "dlq", "list", "--webhook", "d")
    assert code == 0 and out.count("HTTP 404") == 2
    code, out, _ = run(capsys, "dlq", "replay", str(ids[0]))
    assert code == 0 and "replayed 1 dead delivery" in out
    code, out, _ = run(capsys, "dlq", "replay", "--since", "2000-01-01T00:00:00+00:00")
    assert code == 0 and "replayed 1" in out
    with pytest.raises(SystemExit) as exited:
        main(["dlq", "replay", "--since", "yesterday"])
    assert exited.value.code == 2 and "ISO 8601" in capsys.readouterr().err


def test_keys_generate_list_and_rotate(
    db_url: str,
    delivery_env: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run(capsys, "webhooks", "add", "k", "--kind", "webhook", "--url", "http://127.0.0.1:9/h")
    code, out, _ = run(capsys, "keys", "generate")
    new_key = out.strip()
    assert code == 0 and Fernet(new_key.encode())
    monkeypatch.setenv("ALERT_DELIVERY_SECRET_KEYS", f"{new_key},{delivery_env.secret_keys[0]}")
    code, out, _ = run(capsys, "keys", "rotate")
    assert code == 0 and "re-encrypted 1 webhook" in out and new_key not in out
    code, out, _ = run(capsys, "keys", "list")
    assert "(encrypts)" in out and new_key not in out
    monkeypatch.setenv("ALERT_DELIVERY_SECRET_KEYS", new_key)
    assert run(capsys, "webhooks", "test", "k")[0] == 1, "still decryptable with the new key only"
