"""A CLI that scripts well: --json on every list and status command, --version, headers on empty
lists, alerts raise, webhooks update, secrets read from stdin, db url."""

import io
import json

import psycopg
import pytest

from alert_delivery.cli import main
from alert_delivery.config import Settings
from tests.support.delivery import delivery_env  # noqa: F401  (fixture)
from tests.support.receivers import Receiver, serve


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exited:  # argparse's --version and usage errors
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


LISTS = [
    ["alerts", "list"],
    ["routes", "list"],
    ["inhibit", "list"],
    ["silence", "list"],
    ["webhooks", "list"],
    ["dlq", "list"],
    ["inbox", "list"],
    ["escalations", "list"],
    ["escalations", "routes", "list"],
    ["keys", "list"],
    ["db", "status"],
    ["status", "--no-dagster"],
]


@pytest.mark.parametrize("argv", LISTS, ids=lambda a: " ".join(a))
def test_every_list_and_status_command_prints_one_json_document(
    delivery_env: Settings,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    json.loads(out)  # one document, nothing else on stdout
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out.strip()  # a header or a "(none)" line even when empty


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("alert-delivery ")


def test_alerts_raise_with_labels_and_annotations(
    conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["alerts", "raise", "--label", "alertname=Disk", "--label", "severity=critical",
            "--annotation", "summary=disk full on db-1", "--json"]  # fmt: skip
    code, out, _ = run(capsys, *argv)
    assert code == 0
    first = json.loads(out)
    assert first["outcome"] == "unrouted"  # no webhooks in this database
    code, out, _ = run(capsys, *argv)
    assert json.loads(out) == {"alert_id": first["alert_id"], "outcome": "deduplicated"}
    code, out, _ = run(capsys, "alerts", "list", "--json")
    [listed] = json.loads(out)
    assert listed["labels"] == {"alertname": "Disk", "severity": "CRITICAL"}
    assert listed["title"] == "disk full on db-1"
    for bad, where in (
        (["--label", "1x=y"], "--label"),
        (["--label", "a=1", "--label", "a=2"], "--label"),
        (["--label", "a=1", "--annotation", "nope"], "--annotation"),
        (["--label", "severity=loud"], "labels.severity"),
    ):
        code, _, err = run(capsys, "alerts", "raise", *bad)
        assert code == 2 and err.count("\n") == 1 and where in err, (bad, err)


def test_webhooks_update_in_place_reading_secrets_from_stdin(
    delivery_env: Settings,  # noqa: F811
    conn: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve(Receiver()) as first, serve(Receiver()) as second:
        monkeypatch.setattr("sys.stdin", io.StringIO(first.url + "/HIDDEN-1\n"))
        code, out, _ = run(capsys, "webhooks", "add", "ops", "--kind", "webhook",
                           "--url-file", "-")  # fmt: skip
        assert code == 0
        webhook_id = int(out)
        monkeypatch.setattr("sys.stdin", io.StringIO(second.url + "/HIDDEN-2"))
        code, out, err = run(capsys, "webhooks", "update", "ops", "--url-file", "-",
                             "--rate-limit", "25", "--send-resolved", "off")  # fmt: skip
        assert code == 0 and "url" in out and "HIDDEN" not in out + err
        row = conn.execute(
            "SELECT webhook_id, rate_limit_per_s, send_resolved, url_encrypted LIKE '%HIDDEN%'"
            " FROM alert_delivery.webhooks WHERE name = 'ops'"
        ).fetchone()
        assert row == (webhook_id, 25.0, False, False)
        code, out, _ = run(capsys, "webhooks", "test", "ops")
        assert code == 0 and len(second.requests) == 1 and not first.requests
        code, out, _ = run(capsys, "webhooks", "list", "--json")
        [listed] = json.loads(out)
        assert listed["name"] == "ops" and "HIDDEN" not in out
    for bad, where in (
        ([], "nothing to change"),
        (["--rate-limit", "nan"], "rate"),
        (["--url", "http://10.0.0.1/x"], "SSRF guard"),
        (["--url", "https://a.example", "--url-file", "-"], "not both"),
    ):
        code, _, err = run(capsys, "webhooks", "update", "ops", *bad)
        assert code == 2 and err.count("\n") == 1 and where in err, (bad, err)
    code, _, err = run(capsys, "webhooks", "update", "ghost", "--rate-limit", "5")
    assert code == 2 and "no webhook named 'ghost'" in err


def test_db_url_prints_the_configured_url(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "url")
    assert code == 0 and out.strip() == db_url


def test_webhooks_test_leaves_no_pagerduty_incident_open(
    delivery_env: Settings,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve(Receiver()) as rx:
        monkeypatch.setattr("sys.stdin", io.StringIO("R0UT1NGKEY"))
        code, _, err = run(capsys, "webhooks", "add", "pd", "--kind", "pagerduty",
                           "--url", rx.url + "/v2/enqueue", "--secret-file", "-")  # fmt: skip
        assert code == 0, err
        code, out, err = run(capsys, "webhooks", "test", "pd")
        assert code == 0, err
        trigger, resolve = (json.loads(r.body) for r in rx.requests)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["routing_key"] == resolve["routing_key"] == "R0UT1NGKEY"
    assert "R0UT1NGKEY" not in out + err
