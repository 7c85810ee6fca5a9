"""`alert-delivery worker --metrics-port` exposes the worker's own process metrics."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_worker_serves_process_metrics_and_stops_on_sigterm(db_url: str) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "alert_delivery", "worker", "--metrics-port", str(port)],
        env={**os.environ, "ALERT_DELIVERY_DATABASE_URL": db_url},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert "process_resident_memory_bytes" in body
        assert "process_cpu_seconds_total" in body
        assert "python_info" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"worker metrics on http://127.0.0.1:{port}/metrics" in err


def test_metrics_port_in_use_is_one_line_exit_2(db_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "alert_delivery", "worker", "--metrics-port", str(port)],
            env={**os.environ, "ALERT_DELIVERY_DATABASE_URL": db_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("alert-delivery: error: --metrics-port: cannot listen on")


@pytest.mark.parametrize("argv", [["worker", "--metrics-port", "x"], ["no-such-command"]])
def test_argparse_mistakes_are_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from alert_delivery.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("alert-delivery") and "error:" in err[0]
