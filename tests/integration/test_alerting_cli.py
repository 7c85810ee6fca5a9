"""The alerting CLI: ack / resolve / alerts list, silence add / list / expire, routes, inbox."""

import psycopg
import pytest

from alert_delivery.cli import main
from tests.support.alerting import add_default_webhooks, alert, alert_row, kinds_for


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ack_resolve_and_list(conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    add_default_webhooks(conn)
    raised = alert(conn)
    code, out, _ = run(capsys, "ack", str(raised.alert_id), "--by", "alice")
    assert code == 0 and "acknowledged by alice" in out
    assert alert_row(conn, raised.alert_id)["acknowledged_by"] == "alice"
    code, out, _ = run(capsys, "alerts", "list", "--status", "acknowledged")
    assert code == 0 and "merge latency anomaly" in out
    code, out, _ = run(capsys, "resolve", str(raised.alert_id))
    assert code == 0 and "resolved" in out
    code, _, err = run(capsys, "resolve", str(raised.alert_id))
    assert code == 2
    assert err == f"alert-delivery: error: status: alert {raised.alert_id} is already resolved\n"
    code, _, err = run(capsys, "ack", "424242")
    assert code == 2 and err.count("\n") == 1 and "alert 424242 does not exist" in err


def test_silence_add_list_expire(
    conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    add_default_webhooks(conn)
    code, out, _ = run(
        capsys,
        "silence", "add", "--operation", "merge", "--alert-type", "ALL",
        "--minutes", "30", "--reason", "deploy", "--creator", "bob",
    )  # fmt: skip
    assert code == 0
    silence_id = int(out.split()[1])
    held = alert(conn)
    assert held.outcome == "silenced"
    code, out, _ = run(capsys, "silence", "list")
    assert code == 0 and "operation_type=merge" in out and "by=bob" in out
    assert out.splitlines()[1].split()[4] == "1"  # holding
    code, out, _ = run(capsys, "silence", "expire", str(silence_id))
    assert code == 0 and "1 held alert(s) released" in out
    assert kinds_for(conn, held.alert_id) == ["email", "mattermost", "slack"]
    code, _, err = run(capsys, "silence", "expire", str(silence_id))
    assert code == 2 and "already expired" in err


BASE = ["silence", "add", "--operation", "op", "--alert-type", "ALL"]
BAD_SILENCES = [
    (["silence", "add", "--operation", "", "--alert-type", "ALL", "--reason", "r"], "operation"),
    ([*BASE, "--reason", " "], "reason"),
    ([*BASE, "--reason", "r", "--start", "2030-01-01T10:00", "--end", "2030-01-01T09:00"], "end"),
    ([*BASE, "--reason", "r", "--start", "soon"], "--start"),
    ([*BASE, "--reason", "r", "--minutes", "-3"], "minutes"),
    ([*BASE, "--reason", "r", "--minutes", "5", "--end", "2030-01-01T09:00"], "minutes"),
]


def test_bad_silences_exit_2_with_one_line(
    conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, needle in BAD_SILENCES:
        try:
            code = main(argv)
        except SystemExit as exited:  # argparse's own errors (usage line + message)
            code = int(exited.code or 0)
        err = capsys.readouterr().err
        assert code == 2, argv
        assert needle in err.splitlines()[-1] and "Traceback" not in err, err
    assert conn.execute("SELECT count(*) FROM alert_delivery.silences").fetchone() == (0,)


def test_routes_add_list_remove(
    conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    add_default_webhooks(conn)
    code, out, _ = run(
        capsys, "routes", "add", "pages", "--severity", "CRITICAL", "--webhooks", "pagerduty",
        "--escalate-after", "60",
    )  # fmt: skip
    assert code == 0 and "added" in out
    code, out, _ = run(capsys, "routes", "list")
    assert "pages" in out and "@pagerduty" in out and "(fallback)" in out
    code, _, err = run(capsys, "routes", "add", "bad", "--severity", "LOUD", "--kinds", "slack")
    assert code == 2 and err.startswith("alert-delivery: error: severity:")
    code, _, err = run(capsys, "routes", "add", "bad", "--webhooks", "ghost")
    assert code == 2 and "unknown receiver (webhook) 'ghost'" in err
    assert run(capsys, "routes", "remove", "pages")[0] == 0
    assert run(capsys, "routes", "remove", "pages")[0] == 2


def test_inbox_list_and_read(conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    raised = alert(conn)
    row = conn.execute(
        "INSERT INTO alert_delivery.inbox_messages (recipient, alert_id, severity, title, body)"
        " VALUES ('ops', %s, 'CRITICAL', 'FIRING [CRITICAL] merge', 'the body')"
        " RETURNING message_id",
        (raised.alert_id,),
    ).fetchone()
    assert row is not None
    code, out, _ = run(capsys, "inbox", "list", "--recipient", "ops")
    assert code == 0 and "FIRING [CRITICAL] merge" in out and out.splitlines()[1].startswith("*")
    code, out, _ = run(capsys, "inbox", "read", str(row[0]))
    assert code == 0 and "the body" in out
    code, out, _ = run(capsys, "inbox", "list", "--recipient", "ops")
    assert "merge" not in out  # read messages drop out of the unread list
    code, _, err = run(capsys, "inbox", "read", "999")
    assert code == 2 and "no inbox message 999" in err
