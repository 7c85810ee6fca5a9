"""`alert-delivery exporter` as a real process: serves /metrics, stops cleanly on SIGTERM."""

import os
import signal
import subprocess
import sys
import time
import urllib.error

import psycopg

from tests.support.operations import add_delivery, add_webhook, free_port, key, samples, scrape


def test_exporter_process_serves_and_stops_on_sigterm(
    db_url: str, conn: psycopg.Connection
) -> None:
    add_delivery(conn, add_webhook(conn, "ops"), status="dead")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "alert_delivery", "exporter", "--port", str(port)],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                text = scrape(port)
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "exporter did not start listening"
                time.sleep(0.1)
        assert samples(text)[key("alert_delivery_dead_letters")] == 1
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out == f"serving http://127.0.0.1:{port}/metrics (Ctrl-C to stop)\n"
