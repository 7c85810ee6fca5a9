"""`alert-delivery escalations ...`: routes, a run, the list; bad input is one line, exit 2."""

import psycopg
import pytest

from alert_delivery.alerting import raise_alert
from alert_delivery.cli import main


def _webhook(conn: psycopg.Connection, name: str, kind: str = "webhook") -> None:
    conn.execute(
        "INSERT INTO alert_delivery.webhooks (name, kind, url_redacted) VALUES (%s, %s, 'x')",
        (name, kind),
    )


def test_route_run_and_list(conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    _webhook(conn, "oncall")
    _webhook(conn, "pager")
    assert main(["routes", "add", "crit", "--severity", "CRITICAL", "--webhooks", "oncall"]) == 0
    assert (
        main(
            ["escalations", "routes", "add", "page", "--webhook", "pager", "--severity", "CRITICAL"]
        )
        == 0
    )
    assert main(["escalations", "routes", "list"]) == 0
    out = capsys.readouterr().out
    assert "page" in out and "-> pager" in out

    with conn.transaction():
        raise_alert(
            conn,
            source="external",
            operation_type="merge",
            alert_type="THRESHOLD",
            severity="CRITICAL",
            title="merge p99 above 2 s",
        )
    assert main(["escalations", "run"]) == 0
    assert "1 escalation(s) sent" in capsys.readouterr().out
    escalated = conn.execute(
        "SELECT count(*) FROM alert_delivery.delivery_queue q"
        " JOIN alert_delivery.webhooks w USING (webhook_id)"
        " WHERE q.event = 'escalate' AND w.name = 'pager'"
    ).fetchone()
    assert escalated == (1,)
    assert main(["escalations", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 open, 0 stopped, 1 levels sent")
    assert "reason=unacknowledged  level=1" in out

    assert main(["escalations", "routes", "remove", "page"]) == 0
    assert capsys.readouterr().out == "escalation route 'page' removed\n"
    assert main(["escalations", "routes", "list"]) == 0
    assert "(no escalation routes)" in capsys.readouterr().out


def test_bad_route_is_one_line_exit_2(
    conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["escalations", "routes", "add", "x", "--webhook", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "nope" in err[0]
    assert (
        main(["escalations", "routes", "add", "x", "--webhook", "nope", "--severity", "LOUD"]) == 2
    )
    assert "severity" in capsys.readouterr().err
