"""The Dagster UI in a real browser: `alert-delivery ui` on a test home, headless Chromium driven
by Playwright. The asset list shows the project's assets; `retry_sweep` is launched from the
launchpad and its run succeeds. A screenshot is saved under test-artifacts/ (not committed).

Skipped, with the reason, where Chromium or Playwright is missing (`.ci/run` installs Chromium
from Debian's packages)."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# About the embedded server and the UI, not the database under test: once per CI run is enough.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="runs in the embedded-PostgreSQL leg only"
)

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the fixture skips the test and says why
    PlaywrightTimeout = TimeoutError  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCATION = "alert_delivery.definitions:defs"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dagster_ui(tmp_path: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_DELIVERY_", "DAGSTER_"))}
    env["ALERT_DELIVERY_HOME"] = str(tmp_path / "home")
    log = (tmp_path / "ui.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "alert_delivery", "ui", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("dagster UI did not start:\n" + (tmp_path / "ui.log").read_text())
                time.sleep(0.5)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def _dismiss_dialogs(page: "Page") -> None:
    """Dagster's first visit may open a newsletter/security-updates dialog over the page."""
    skip = page.get_by_role("button", name="Skip")
    with contextlib.suppress(PlaywrightTimeout):
        skip.click(timeout=3_000)


def test_asset_graph_and_launch_retry_sweep(dagster_ui: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{dagster_ui}/assets")
            _dismiss_dialogs(page)
            for asset in ("baselines", "anomalies", "correlations", "alerts"):
                expect(page.get_by_text(asset, exact=True).first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "dagster-assets.png"))

            page.goto(f"{dagster_ui}/locations/{LOCATION}/jobs/retry_sweep/playground")
            launch = page.get_by_role("button", name="Launch Run")
            expect(launch).to_be_enabled(timeout=60_000)
            _dismiss_dialogs(page)
            launch.click()
            page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}.*"), timeout=60_000)
            expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=120_000)
            expect(page.get_by_text("retry_sweep").first).to_be_visible()
        finally:
            page.screenshot(path=str(ARTIFACTS / "dagster-retry-sweep-run.png"))
            browser.close()
