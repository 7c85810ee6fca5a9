"""`make run`: the whole pipeline once, end to end, on the embedded database.

Loads a week of synthetic metrics with one latency spike in the last complete hour, materialises
the Dagster assets for that hour in process (instance under DAGSTER_HOME), delivers the resulting
alert over real HTTP to a signed-webhook receiver on 127.0.0.1, and reports what happened.

Running it again reuses the data: the spike hour is read back from the database, detection is
idempotent, and the alert is still firing, so dedup sends no second notification.
"""

import contextlib
import os
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
import psycopg

from alert_delivery.config import Settings, load_settings
from alert_delivery.db import connect, resolve_database_url
from alert_delivery.db.migrations import upgrade
from alert_delivery.defs.instance import prepare_dagster_home
from alert_delivery.demo_receiver import DemoReceiver
from alert_delivery.errors import AlertDeliveryError, InvalidInput

DEMO_WEBHOOK = "demo-receiver"
DEMO_ROUTE = "demo: every alert to the local receiver"
DEMO_OPERATIONS = 6
DEMO_ROWS_PER_HOUR = 20
DEMO_SEED = 7


@dataclass
class DemoSummary:
    metrics_loaded: int = 0
    metrics_total: int = 0
    spike_hour: datetime | None = None
    anomalies: dict[str, int] = field(default_factory=dict)
    alerts_firing: int = 0
    alerts_total: int = 0
    queue: dict[str, int] = field(default_factory=dict)
    received_now: int = 0
    verified_now: int = 0
    runs: list[str] = field(default_factory=list)
    api: str = ""


class DemoFailed(AlertDeliveryError):
    """A step of the demo pipeline failed; the message names the run to open in the UI."""


def _say(message: str) -> None:
    print(message, flush=True)  # noqa: T201 - the demo's report is its output


def _allow_loopback() -> None:
    if not os.environ.get("ALERT_DELIVERY_ALLOWED_TARGETS"):
        os.environ["ALERT_DELIVERY_ALLOWED_TARGETS"] = "127.0.0.1/32"


def _remember_settings(settings: Settings) -> None:
    """Write the settings the demo ran with where ``alert-delivery ui`` picks them up, so the
    daemon delivers the demo's rows as the demo did (see ``cli.ui.demo_environment``)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    allowed = os.environ.get("ALERT_DELIVERY_ALLOWED_TARGETS", "")
    (settings.home / "demo.env").write_text(f"ALERT_DELIVERY_ALLOWED_TARGETS={allowed}\n")


def _load_metrics(conn: psycopg.Connection, summary: DemoSummary) -> datetime:
    """Load the demo data once; return the spike hour (read back on later runs)."""
    from alert_delivery.detection import synthetic

    row = conn.execute(
        "SELECT count(*), date_trunc('hour', max(recorded_at))"
        " FROM alert_delivery.performance_metrics"
    ).fetchone()
    assert row is not None
    if row[0]:
        summary.metrics_total = int(row[0])
        return row[1].astimezone(UTC)  # type: ignore[no-any-return]
    now = datetime.now(UTC)
    hour = synthetic.last_complete_hour(now)
    rows = synthetic.generate_metrics(
        now=now,
        hours=7 * 24,
        rows_per_hour=DEMO_ROWS_PER_HOUR,
        operations=DEMO_OPERATIONS,
        seed=DEMO_SEED,
        spike=synthetic.Spike("merge", hour, factor=4.0),
    )
    with conn.transaction():
        summary.metrics_loaded = synthetic.load_metric_rows(conn, rows)
    summary.metrics_total = summary.metrics_loaded
    return hour


def _ensure_webhook(db_url: str, receiver: DemoReceiver) -> int:
    """Register the local receiver once; later runs point it at this run's port."""
    from alert_delivery.delivery.registry import add_webhook
    from alert_delivery.delivery.secrets import load_vault
    from alert_delivery.delivery.ssrf import redact_url

    vault = load_vault()
    with connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT webhook_id, secret_encrypted FROM alert_delivery.webhooks WHERE name = %s",
            (DEMO_WEBHOOK,),
        ).fetchone()
        if row is None:
            added = add_webhook(db_url, name=DEMO_WEBHOOK, kind="webhook", url=receiver.url)
            assert added.generated_secret is not None
            receiver.secret = added.generated_secret
            return added.webhook_id
        conn.execute(
            "UPDATE alert_delivery.webhooks SET url_encrypted = %s, url_redacted = %s,"
            " active = true, disabled_reason = NULL, updated_at = now() WHERE webhook_id = %s",
            (vault.encrypt(receiver.url), redact_url(receiver.url), row[0]),
        )
        receiver.secret = vault.decrypt(row[1])
        return int(row[0])


def _ensure_route(db_url: str, webhook_id: int) -> None:
    from alert_delivery.alerting.routing import ensure_rule

    # Only the demo's own detection alerts, and `continue`: the ordinary rules still apply.
    ensure_rule(db_url, name=DEMO_ROUTE, webhook_ids=[webhook_id], match=["source=detection"])


def _remove_route(db_url: str) -> None:
    """The demo's route goes with the demo: later alerts route as the rules say, not to a
    receiver that stopped with this process."""
    from alert_delivery.alerting.routing import remove_rule

    with connect(db_url, autocommit=True) as conn, suppress(InvalidInput):
        remove_rule(conn, DEMO_ROUTE)


# Dagster prints every event at DEBUG; the demo's own summary is what a newcomer should read.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _run_job(
    instance: dg.DagsterInstance, name: str, summary: DemoSummary, partition: str | None = None
) -> dg.ExecuteInProcessResult:
    from alert_delivery.definitions import load_definitions

    job = load_definitions().resolve_job_def(name)
    result = job.execute_in_process(
        instance=instance, partition_key=partition, run_config=QUIET, raise_on_error=False
    )
    summary.runs.append(f"{name}{f' [{partition}]' if partition else ''}: {result.run_id[:8]}")
    if not result.success:
        failure = next((e.message for e in result.all_events if e.is_failure), "see the run")
        raise DemoFailed(f"Dagster run {name} {result.run_id} failed: {failure}")
    return result


def _materialise(instance: dg.DagsterInstance, hour: datetime, summary: DemoSummary) -> None:
    """Baselines, then the spike hour's anomalies, correlations and alerts (enqueued)."""
    _run_job(instance, "recalculate_baselines", summary)
    _run_job(instance, "detect_hourly", summary, partition=hour.strftime("%Y-%m-%d-%H:%M"))


def _deliver(instance: dg.DagsterInstance, summary: DemoSummary) -> None:
    """The same job the sensor launches; runs until nothing due is left (retries wait)."""
    for _ in range(3):
        result = _run_job(instance, "deliver_pending", summary)
        counts = result.output_for_node("deliver_due_rows")
        if not counts.get("claimed"):
            return


def _collect(db_url: str, hour: datetime, summary: DemoSummary) -> None:
    with connect(db_url, autocommit=True) as conn:
        summary.anomalies = {
            str(sev): int(n)
            for sev, n in conn.execute(
                "SELECT severity, count(*) FROM alert_delivery.anomalies"
                " WHERE partition_start = %s GROUP BY severity",
                (hour,),
            )
        }
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'firing'), count(*) FROM alert_delivery.alerts"
        ).fetchone()
        assert row is not None
        summary.alerts_firing, summary.alerts_total = int(row[0]), int(row[1])
        summary.queue = {
            str(status): int(n)
            for status, n in conn.execute(
                "SELECT status, count(*) FROM alert_delivery.delivery_queue GROUP BY status"
            )
        }


def print_summary(summary: DemoSummary, ui_hint: str) -> None:
    hour = summary.spike_hour.strftime("%Y-%m-%d %H:00 UTC") if summary.spike_hour else "?"
    sev = ", ".join(f"{n} {s}" for s, n in sorted(summary.anomalies.items())) or "none"
    q = summary.queue
    _say("")
    _say("alert-delivery demo — summary")
    _say(
        f"  metrics loaded      {summary.metrics_loaded:>7}  "
        f"(in the database: {summary.metrics_total})"
    )
    _say(f"  spike hour          {hour}")
    _say(f"  anomalies           {sev}")
    _say(f"  alerts              {summary.alerts_firing} firing, {summary.alerts_total} in all")
    _say(
        f"  deliveries          delivered {q.get('delivered', 0)} / retrying "
        f"{q.get('pending', 0) + q.get('in_flight', 0)} / dead {q.get('dead', 0)}"
    )
    _say(
        f"  this run's receiver {summary.received_now} notification(s) received on 127.0.0.1, "
        f"{summary.verified_now} with a valid signature"
    )
    if summary.received_now == 0 and q.get("delivered", 0):
        _say(
            "                      (nothing new to send: the alert is still firing and was "
            "delivered before; dedup holds repeats for 4 h)"
        )
    if summary.api:
        _say(f"  HTTP API            {summary.api}")
        _say("                      (a re-send of a firing alert: deduplicated, never a new page)")
    _say(f"  Dagster runs        {'; '.join(summary.runs)}")
    _say(f"  open the UI         {ui_hint}")


DEMO_TOKEN = "demo-api"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _via_api(db_url: str, summary: DemoSummary) -> None:
    """Raise the demo's alert through `alert-delivery serve` with a token made for it: the spike
    alert's labels, re-sent as Prometheus would, deduplicate into it (no second notification)."""
    import json
    import signal
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from alert_delivery.api.tokens import add_token, revoke_token

    with connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT labels, annotations FROM alert_delivery.alerts"
            " WHERE source = 'detection' ORDER BY alert_id DESC LIMIT 1"
        ).fetchone()
        labels, annotations = row if row else ({"alertname": "DemoApi"}, {})
        with contextlib.suppress(AlertDeliveryError):
            revoke_token(conn, DEMO_TOKEN)
        token = add_token(conn, DEMO_TOKEN, "ingest")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "alert_delivery", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/-/healthy", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise DemoFailed("alert-delivery serve did not start") from None
                time.sleep(0.1)
        body = json.dumps([{"labels": labels, "annotations": annotations}]).encode()
        request = urllib.request.Request(
            base + "/api/v1/alerts",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                result = json.loads(reply.read())["results"][0]
        except urllib.error.HTTPError as exc:
            raise DemoFailed(f"serve answered {exc.code}: {exc.read()[:200]!r}") from None
        summary.api = (
            f"alert-delivery serve on {base}, token {DEMO_TOKEN!r} (ingest, made for this run):"
            f" POST /api/v1/alerts -> alert {result['alert_id']} {result['outcome']}"
        )
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(15)
        with connect(db_url, autocommit=True) as conn, contextlib.suppress(AlertDeliveryError):
            revoke_token(conn, DEMO_TOKEN)


def run_demo() -> int:
    settings = load_settings()
    _allow_loopback()
    _remember_settings(settings)
    _say("alert-delivery demo: embedded PostgreSQL, synthetic metrics, Dagster assets, delivery")
    db_url = resolve_database_url(settings)
    with connect(db_url, autocommit=True) as conn:
        applied = upgrade(conn)
        _say(f"  migrations applied: {len(applied)}")
    prepare_dagster_home(settings, db_url)
    os.environ["ALERT_DELIVERY_DATABASE_URL"] = db_url
    summary = DemoSummary()
    receiver = DemoReceiver(secret="").start()
    try:
        with connect(db_url, autocommit=True) as conn:
            hour = _load_metrics(conn, summary)
        summary.spike_hour = hour
        webhook_id = _ensure_webhook(db_url, receiver)
        _ensure_route(db_url, webhook_id)
        instance = dg.DagsterInstance.get()
        _materialise(instance, hour, summary)
        _deliver(instance, summary)
        _via_api(db_url, summary)
    finally:
        receiver.stop()
        _remove_route(db_url)
    summary.received_now = len(receiver.received)
    summary.verified_now = sum(1 for r in receiver.received if r.verified)
    _collect(db_url, summary.spike_hour, summary)
    print_summary(summary, "make ui, then http://127.0.0.1:3000 (runs, assets, sensors, schedules)")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
