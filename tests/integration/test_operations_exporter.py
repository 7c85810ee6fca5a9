"""The Prometheus exporter, scraped over real HTTP from rows in a real database."""

import socket
from collections.abc import Iterator

import psycopg
import pytest

from alert_delivery.cli import main
from alert_delivery.exporter import serve, start_process_metrics_server
from tests.support.operations import (
    REDACTED_URL,
    SECRET_TOKEN,
    Sql,
    add_alert,
    add_delivery,
    add_health,
    add_log,
    add_webhook,
    add_worker,
    free_port,
    key,
    samples,
    scrape,
)


@pytest.fixture
def exporter_port(db_url: str) -> Iterator[int]:
    port = free_port()
    # No settle time: the rows a test inserts are committed before it scrapes.
    server, thread = serve(db_url, "127.0.0.1", port, settle_s=0)
    yield port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def seed(conn: psycopg.Connection) -> None:
    # Alerts first: with alerting's migration applied an INSERT runs the routing pipeline, and
    # with no webhook yet it enqueues nothing, so the queue holds exactly the rows below.
    add_alert(conn, severity="CRITICAL")
    add_alert(conn, severity="CRITICAL")
    add_alert(conn, severity="WARNING", status="acknowledged")
    add_alert(conn, severity="INFO", status="resolved")
    slack = add_webhook(conn, "ops-slack", "slack")
    pager = add_webhook(conn, "pager", "pagerduty")
    add_webhook(conn, "old-mail", "email", active=False, disabled_reason="410 Gone")
    add_health(conn, slack, breaker_state="open", consecutive_failures=5, status="unavailable")
    add_delivery(conn, slack, created_at=Sql("now() - interval '120 seconds'"))
    add_delivery(conn, slack)
    add_delivery(conn, slack, status="dead", attempts=9)
    add_delivery(conn, pager, status="in_flight")
    for _ in range(3):
        add_delivery(conn, pager, status="delivered")
    # 5 ms sits exactly on the first bound: `le` is inclusive.
    add_log(conn, slack, "attempt", latency_ms=5.0)
    add_log(conn, slack, "delivered", latency_ms=7.0)
    add_log(conn, slack, "failed", latency_ms=100.0)
    add_log(conn, slack, "retry_scheduled", latency_ms=300.0)  # a failed attempt, as logged
    add_log(conn, slack, "dead_lettered")  # manual dead-lettering: no latency, not an attempt
    add_log(conn, slack, "queued", latency_ms=1.0)  # not an attempt: ignored
    add_log(conn, slack, "delivered")  # no latency: ignored
    add_log(conn, pager, "delivered", latency_ms=20000.0)
    add_worker(conn, "w-live")
    add_worker(conn, "w-stale", heartbeat_at=Sql("now() - interval '60 seconds'"))
    add_worker(conn, "w-stopped", stopped_at=Sql("now()"))


def test_scrape_reports_the_database(conn: psycopg.Connection, exporter_port: int) -> None:
    seed(conn)
    text = scrape(exporter_port)
    got = samples(text)

    assert got[key("alert_delivery_database_up")] == 1.0
    d = "alert_delivery_deliveries"
    assert got[key(d, webhook="ops-slack", kind="slack", status="pending")] == 2
    assert got[key(d, webhook="ops-slack", kind="slack", status="dead")] == 1
    assert got[key(d, webhook="ops-slack", kind="slack", status="delivered")] == 0
    assert got[key(d, webhook="pager", kind="pagerduty", status="in_flight")] == 1
    assert got[key(d, webhook="pager", kind="pagerduty", status="delivered")] == 3
    assert got[key(d, webhook="old-mail", kind="email", status="pending")] == 0
    assert len([k for k in got if k[0] == d]) == 12  # 3 webhooks x 4 statuses, zeros included

    depth = {
        s: got[key("alert_delivery_queue_depth", status=s)]
        for s in ("pending", "in_flight", "delivered", "dead")
    }
    assert depth == {"pending": 2, "in_flight": 1, "delivered": 3, "dead": 1}
    assert 120 <= got[key("alert_delivery_oldest_pending_age_seconds")] < 150
    assert got[key("alert_delivery_dead_letters")] == 1

    b = "alert_delivery_webhook_breaker_state"
    assert got[key(b, webhook="ops-slack", state="open")] == 1
    assert got[key(b, webhook="ops-slack", state="closed")] == 0
    assert got[key(b, webhook="pager", state="closed")] == 1  # no health row yet: closed
    assert got[key(b, webhook="pager", state="half_open")] == 0
    assert got[key("alert_delivery_webhook_consecutive_failures", webhook="ops-slack")] == 5
    assert got[key("alert_delivery_webhook_active", webhook="old-mail", kind="email")] == 0
    assert got[key("alert_delivery_webhook_active", webhook="pager", kind="pagerduty")] == 1
    assert got[key("alert_delivery_live_workers")] == 1

    a = "alert_delivery_alerts"
    assert got[key(a, status="firing", severity="CRITICAL")] == 2
    assert got[key(a, status="acknowledged", severity="WARNING")] == 1
    assert got[key(a, status="resolved", severity="INFO")] == 1
    assert got[key(a, status="firing", severity="INFO")] == 0
    assert len([k for k in got if k[0] == a]) == 9

    h = "alert_delivery_attempt_latency_seconds"
    slack_buckets = {
        le: got[key(h + "_bucket", webhook="ops-slack", le=le)]
        for le in ("0.005", "0.01", "0.05", "0.1", "0.25", "10.0", "+Inf")
    }
    assert slack_buckets == {
        "0.005": 1,
        "0.01": 2,
        "0.05": 2,
        "0.1": 3,
        "0.25": 3,
        "10.0": 4,
        "+Inf": 4,
    }
    assert got[key(h + "_bucket", webhook="ops-slack", le="0.5")] == 4
    assert got[key(h + "_count", webhook="ops-slack")] == 4
    assert got[key(h + "_sum", webhook="ops-slack")] == pytest.approx(0.412)
    assert got[key(h + "_bucket", webhook="pager", le="10.0")] == 0
    assert got[key(h + "_bucket", webhook="pager", le="+Inf")] == 1
    assert got[key(h + "_sum", webhook="pager")] == pytest.approx(20.0)

    assert SECRET_TOKEN not in text
    assert REDACTED_URL not in text and "https://" not in text


def test_each_scrape_reads_fresh_rows(conn: psycopg.Connection, exporter_port: int) -> None:
    first = samples(scrape(exporter_port))
    assert first[key("alert_delivery_queue_depth", status="pending")] == 0
    assert first[key("alert_delivery_oldest_pending_age_seconds")] == 0
    assert not [k for k in first if k[0] == "alert_delivery_deliveries"]
    hook = add_webhook(conn, "late")
    add_delivery(conn, hook)
    second = samples(scrape(exporter_port))
    assert second[key("alert_delivery_queue_depth", status="pending")] == 1
    assert (
        second[key("alert_delivery_deliveries", webhook="late", kind="webhook", status="pending")]
        == 1
    )


def test_latency_totals_grow_by_window_without_double_counting(
    conn: psycopg.Connection, exporter_port: int
) -> None:
    hook = add_webhook(conn, "h")
    add_log(conn, hook, "delivered", latency_ms=20.0)
    h = "alert_delivery_attempt_latency_seconds"
    for _ in range(3):  # repeated scrapes re-read nothing they already counted
        got = samples(scrape(exporter_port))
        assert got[key(h + "_count", webhook="h")] == 1
    add_log(conn, hook, "retry_scheduled", latency_ms=700.0)
    got = samples(scrape(exporter_port))
    assert got[key(h + "_count", webhook="h")] == 2
    assert got[key(h + "_bucket", webhook="h", le="0.025")] == 1
    assert got[key(h + "_bucket", webhook="h", le="1.0")] == 2
    assert got[key(h + "_sum", webhook="h")] == pytest.approx(0.72)


def test_latency_window_trails_now_by_the_settle_time(
    db_url: str, conn: psycopg.Connection
) -> None:
    hook = add_webhook(conn, "h")
    add_log(conn, hook, "delivered", latency_ms=20.0, created_at=Sql("now() - interval '2 min'"))
    add_log(conn, hook, "delivered", latency_ms=30.0)  # may belong to a transaction still open
    port = free_port()
    server, thread = serve(db_url, "127.0.0.1", port, settle_s=60)
    try:
        got = samples(scrape(port))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    h = "alert_delivery_attempt_latency_seconds"
    assert got[key(h + "_count", webhook="h")] == 1
    assert got[key(h + "_sum", webhook="h")] == pytest.approx(0.02)


def test_unreachable_database_is_a_metric_not_an_error() -> None:
    port, dead_port = free_port(), free_port()
    server, thread = serve(f"postgresql://postgres@127.0.0.1:{dead_port}/nope", "127.0.0.1", port)
    try:
        text = scrape(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert samples(text) == {key("alert_delivery_database_up"): 0.0}


def test_process_metrics_server_exposes_the_default_registry() -> None:
    port = free_port()
    server, thread = start_process_metrics_server(port)
    try:
        got = samples(scrape(port))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert any(name.startswith("python_info") for name, _ in got)
    assert any(name.startswith("process_") for name, _ in got)


def test_exporter_cli_refuses_a_busy_port(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["exporter", "--host", "127.0.0.1", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"alert-delivery: error: --port: cannot listen on 127.0.0.1:{port}")


def test_exporter_cli_refuses_an_out_of_range_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exporter", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "alert-delivery: error: --port: must be between 1 and 65535, got 70000"
