"""Real clients against `alert-delivery serve` (a subprocess, real HTTP on 127.0.0.1), with a
delivery worker and a loopback receiver: Prometheus, amtool and a PagerDuty-style client.

Prometheus and amtool come from the Debian packages ``prometheus`` and
``prometheus-alertmanager`` (``.ci/run`` installs them); each test skips, saying so, when its
binary is missing.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alert_delivery.alerting.routing import ensure_rule
from alert_delivery.api.tokens import add_token
from alert_delivery.config import Settings
from alert_delivery.delivery.registry import add_webhook
from tests.support.delivery import delivery_env
from tests.support.receivers import Receiver, serve
from tests.support.waiting import wait_for

__all__ = ["delivery_env"]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


class Stack:
    def __init__(self, db_url: str, port: int, receiver: Receiver) -> None:
        self.db_url = db_url
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.receiver = receiver
        with psycopg.connect(db_url, autocommit=True) as conn:
            self.token = add_token(conn, "clients", "admin")

    def alerts(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(
                "SELECT alert_id, labels, status, held_reason, occurrences"
                " FROM alert_delivery.alerts ORDER BY alert_id"
            )
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def events(self) -> list[tuple[str, str]]:
        """(event, alertname or dedup_key) of every notification the receiver got."""
        kinds = {"alert.triggered": "trigger", "alert.resolved": "resolve"}
        out = []
        for body in self.receiver.bodies():
            doc = json.loads(body)
            for alert in (doc.get("data") or {}).get("alerts") or []:
                labels = alert.get("labels") or {}
                name = labels.get("alertname") or labels.get("dedup_key", "?")
                out.append((kinds.get(doc["type"], doc["type"]), str(name)))
        return out


@pytest.fixture
def stack(db_url: str, delivery_env: Settings, tmp_path: Path) -> Iterator[Stack]:
    env = dict(os.environ)
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    with serve(Receiver()) as receiver:
        hook = add_webhook(db_url, name="sink", kind="webhook", url=receiver.url)
        ensure_rule(db_url, name="everything to the sink", webhook_ids=[hook.webhook_id])
        s = Stack(db_url, port, receiver)
        try:
            for args in (
                ["serve", "--port", str(port)],
                ["worker", "--poll-interval", "0.2", "--read-timeout", "5"],
            ):
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "alert_delivery", *args],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=(tmp_path / f"{args[0]}.log").open("wb"),
                    )
                )
            wait_for(lambda: _healthy(s.url + "/-/healthy"), "serve answers", timeout_s=30)
            yield s
        finally:
            for proc in procs:
                _stop(proc)
            log = (tmp_path / "serve.log").read_text(errors="replace")
            assert s.token not in log, "the token must never reach the server's log"
            assert "Traceback" not in log, log[-3000:]


def _event_seen(stack: Stack, event: str, name: str) -> bool:
    return (event, name) in stack.events()


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (Debian package {package}; .ci/run installs it)")
    return path


def test_prometheus_fires_through_the_api_and_resolves_when_the_rule_goes(
    stack: Stack, tmp_path: Path
) -> None:
    prometheus = _need("prometheus", "prometheus")
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n- name: e2e\n  interval: 1s\n  rules:\n  - alert: AlwaysFiring\n"
        "    expr: vector(1)\n    labels: {severity: critical, team: e2e}\n"
        "    annotations: {summary: always firing}\n"
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {evaluation_interval: 1s}\n"
        f"rule_files: [{rules}]\n"
        "alerting:\n  alertmanagers:\n  - api_version: v2\n"
        f"    authorization: {{credentials: {stack.token}}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{stack.port}']}}]\n"
    )
    web_port = free_port()
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
            "--web.enable-lifecycle",
            "--rules.alert.resend-delay=1s",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        wait_for(
            lambda: _event_seen(stack, "trigger", "AlwaysFiring"),
            "Prometheus's alert reaches the receiver",
            timeout_s=60,
        )
        # Prometheus re-sends every second: one alert, more occurrences, one notification.
        wait_for(lambda: stack.alerts()[0]["occurrences"] >= 3, "re-sends deduplicate")
        [alert] = stack.alerts()
        assert alert["labels"] == {
            "alertname": "AlwaysFiring",
            "severity": "CRITICAL",
            "team": "e2e",
        }
        assert stack.events().count(("trigger", "AlwaysFiring")) == 1

        rules.write_text("groups: []\n")
        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{web_port}/-/reload", method="POST"),
            timeout=10,
        ).close()
        wait_for(
            lambda: stack.alerts()[0]["status"] == "resolved",
            "the alert resolves once the rule is gone",
            timeout_s=60,
        )
        wait_for(lambda: _event_seen(stack, "resolve", "AlwaysFiring"), "the resolve notice")
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            how = conn.execute(
                "SELECT detail FROM alert_delivery.delivery_log WHERE event = 'resolved'"
            ).fetchall()
        # Prometheus's own resolved notification (endsAt in the past) or serve's endsAt sweep.
        print(f"prometheus alert resolved: {how}")
    finally:
        _stop(proc)


def _amtool(stack: Stack, tmp_path: Path, *args: str) -> str:
    amtool = _need("amtool", "prometheus-alertmanager")
    http_config = tmp_path / "amtool-http.yml"
    http_config.write_text(f"authorization: {{credentials: {stack.token}}}\n")
    proc = subprocess.run(
        [amtool, f"--alertmanager.url={stack.url}", f"--http.config.file={http_config}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def test_amtool_adds_alerts_and_a_silence_that_holds_the_second_back(
    stack: Stack, tmp_path: Path
) -> None:
    _amtool(
        stack,
        tmp_path,
        "alert",
        "add",
        "alertname=AmtoolFirst",
        "severity=warning",
        "--annotation=summary=first from amtool",
    )
    wait_for(lambda: _event_seen(stack, "trigger", "AmtoolFirst"), "the first alert delivered")
    assert "AmtoolFirst" in _amtool(stack, tmp_path, "alert", "query")

    silence_id = _amtool(
        stack,
        tmp_path,
        "silence",
        "add",
        "alertname=AmtoolSecond",
        "--comment=held by the e2e test",
        "--duration=1h",
    ).strip()
    assert silence_id.isdigit()
    assert silence_id in _amtool(stack, tmp_path, "silence", "query")

    _amtool(stack, tmp_path, "alert", "add", "alertname=AmtoolSecond", "severity=critical")
    second = next(a for a in stack.alerts() if a["labels"]["alertname"] == "AmtoolSecond")
    assert second["held_reason"] == "silenced"
    assert "AmtoolSecond" not in _amtool(stack, tmp_path, "alert", "query")
    assert "AmtoolSecond" in _amtool(stack, tmp_path, "alert", "query", "--silenced")
    # The worker is running: had the second alert been sent, it would be there by the time the
    # first one's resolve-free queue is idle; check the receiver saw only the first.
    assert [n for _e, n in stack.events()] == ["AmtoolFirst"]

    _amtool(stack, tmp_path, "silence", "expire", silence_id)
    assert silence_id not in _amtool(stack, tmp_path, "silence", "query")
    assert silence_id in _amtool(stack, tmp_path, "silence", "query", "--expired")
    wait_for(lambda: _event_seen(stack, "trigger", "AmtoolSecond"), "released once it expires")


def test_a_pagerduty_style_client_triggers_and_resolves_by_dedup_key(stack: Stack) -> None:
    def send(event: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            stack.url + "/v2/enqueue",
            data=json.dumps({"routing_key": stack.token, **event}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 202
            return dict(json.loads(reply.read()))

    payload = {"summary": "db-1 disk full", "source": "db-1", "severity": "critical"}
    got = send({"event_action": "trigger", "dedup_key": "db-1/disk", "payload": payload})
    assert got == {"status": "success", "message": "Event processed", "dedup_key": "db-1/disk"}
    wait_for(lambda: _event_seen(stack, "trigger", "db-1/disk"), "the trigger delivered")
    send({"event_action": "trigger", "dedup_key": "db-1/disk", "payload": payload})
    send({"event_action": "resolve", "dedup_key": "db-1/disk"})
    wait_for(lambda: _event_seen(stack, "resolve", "db-1/disk"), "the resolve delivered")
    assert stack.events().count(("trigger", "db-1/disk")) == 1
