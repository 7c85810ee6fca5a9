"""Prometheus exporter: `/metrics` computed from the database on every scrape.

Per scrape: one fold of the counter increments (``alert_delivery.fold_delivery_counts()``), then
three queries (``exporter_gauges``, ``exporter_counters`` and ``exporter_latency_histogram`` in
``sql/queries/operations.sql``); PostgreSQL does the aggregation, Python only relabels the rows
and adds each new latency window to running totals (see ``operations/latency_totals.py``).
The ``_total`` counters are database-wide (every worker and Dagster run) and kept in their own
tables by triggers (migration 0012), so they never go down when delivery_log rows are deleted or
its partitions dropped. Labels carry webhook *names* or kinds: a URL never reaches the exposition.
"""

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from alert_delivery.db import connect, query
from alert_delivery.errors import AlertDeliveryError
from alert_delivery.operations.latency_totals import LatencyTotals

log = logging.getLogger(__name__)

PREFIX = "alert_delivery_"


@dataclass(frozen=True)
class MetricSpec:
    help: str
    labels: tuple[str, ...]


# Metric name (without prefix) as the SQL returns it -> help text and label order.
GAUGES: dict[str, MetricSpec] = {
    "deliveries": MetricSpec(
        "Delivery queue rows by webhook and status.", ("webhook", "kind", "status")
    ),
    "queue_depth": MetricSpec("Delivery queue rows by status.", ("status",)),
    "oldest_pending_age_seconds": MetricSpec(
        "Age of the oldest pending delivery (0 when none is pending).", ()
    ),
    "oldest_due_age_seconds": MetricSpec(
        "How long the most overdue pending delivery has been due (0 when none is due).", ()
    ),
    "dead_letters": MetricSpec("Deliveries in the dead-letter queue.", ()),
    "webhook_breaker_state": MetricSpec(
        "Circuit breaker state per webhook (1 for the current state).", ("webhook", "state")
    ),
    "webhook_consecutive_failures": MetricSpec(
        "Consecutive failed attempts per webhook.", ("webhook",)
    ),
    "webhook_active": MetricSpec(
        "1 when the webhook is active, 0 when disabled.", ("webhook", "kind")
    ),
    "live_workers": MetricSpec("Workers with a heartbeat within the last 30 seconds.", ()),
    "alerts": MetricSpec("Alerts by status and severity.", ("status", "severity")),
}


# Counter name (without prefix and without the ``_total`` the client appends) -> help and labels.
COUNTERS: dict[str, MetricSpec] = {
    "delivery_events": MetricSpec(
        "delivery_log events (delivered, retry_scheduled, dead_lettered, deferred, queued,"
        " suppressed_*, ...) by webhook kind (none: no webhook), lifetime.",
        ("event", "kind"),
    ),
    "attempts": MetricSpec(
        "Delivery attempts (requests sent) by outcome and webhook kind.", ("outcome", "kind")
    ),
    "retries": MetricSpec("Attempts that failed and scheduled a retry.", ("kind",)),
    "dead_lettered": MetricSpec(
        "Deliveries moved to the dead-letter queue (retries exhausted, permanent failure,"
        " 410 Gone, disabled webhook).",
        ("kind",),
    ),
    "suppressions": MetricSpec(
        "Alerts not delivered by decision: duplicate, duplicate_content, silenced, inhibited,"
        " no_route.",
        ("reason",),
    ),
    "breaker_transitions": MetricSpec(
        "Circuit-breaker transitions by the state entered and webhook kind.", ("kind", "state")
    ),
}
ATTEMPT_EVENTS = frozenset(
    {"attempt", "delivered", "failed", "retry_scheduled", "dead_lettered", "throttled"}
)
SUPPRESSED = "suppressed_"
BREAKER = "breaker_"

CounterRow = tuple[str, str, float, float]


def _counter_families(rows: Iterable[CounterRow]) -> list[Metric]:
    """Relabel exporter_counters' (event, kind, n, attempts) rows into the counter families."""
    values: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in COUNTERS}

    def add(name: str, labels: tuple[str, ...], value: float) -> None:
        values[name][labels] = values[name].get(labels, 0.0) + value

    for event, kind, n, attempts in rows:
        if event.startswith(BREAKER):
            add("breaker_transitions", (kind, event.removeprefix(BREAKER)), n)
            continue
        add("delivery_events", (event, kind), n)
        if event in ATTEMPT_EVENTS:
            add("attempts", (event, kind), attempts)
        if event == "retry_scheduled":
            add("retries", (kind,), n)
        elif event == "dead_lettered":
            add("dead_lettered", (kind,), n)
        elif event.startswith(SUPPRESSED):
            add("suppressions", (event.removeprefix(SUPPRESSED),), n)
    families: list[Metric] = []
    for name, spec in COUNTERS.items():
        family = CounterMetricFamily(PREFIX + name, spec.help, labels=list(spec.labels))
        for labels, value in sorted(values[name].items()):
            family.add_metric(list(labels), value)
        families.append(family)
    return families


def _fold(conn: psycopg.Connection) -> None:
    """Compact the counter increments; a read-only connection (a replica, a read-only role)
    skips it: the counters read the same either way."""
    try:
        conn.execute("SELECT alert_delivery.fold_delivery_counts()")
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
        log.debug("exporter: counters not folded: %s", _first_line(exc))


def _gauge_families(rows: Iterable[tuple[str, dict[str, str], float]]) -> list[Metric]:
    families = {
        name: GaugeMetricFamily(PREFIX + name, spec.help, labels=list(spec.labels))
        for name, spec in GAUGES.items()
    }
    for metric, labels, value in rows:
        spec = GAUGES.get(metric)
        if spec is None:  # a query row the exporter does not know: a bug, not a user error
            log.warning("exporter: unknown metric %r from exporter_gauges", metric)
            continue
        families[metric].add_metric([str(labels[name]) for name in spec.labels], float(value))
    return list(families.values())


def _latency_family(totals: LatencyTotals) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        PREFIX + "attempt_latency_seconds",
        "Latency of delivery attempts (delivery_log rows that carry a latency).",
        labels=["webhook"],
    )
    for webhook, series in totals.snapshot():
        buckets = [
            (_le(bound / 1000.0), count)
            for bound, count in zip(series.bounds_ms, series.cumulative, strict=True)
        ]
        buckets.append(("+Inf", series.total))
        family.add_metric([webhook], buckets, series.sum_ms / 1000.0)
    return family


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _le(seconds: float) -> str:
    """Bucket bound as Prometheus clients print it: ``0.005``, ``1.0``, ``10.0``."""
    return repr(float(seconds))


class DatabaseCollector(Collector):
    """Reads the alert-delivery database on each ``collect()``.

    When the database is unreachable the scrape still succeeds with
    ``alert_delivery_database_up 0``, so Prometheus can alert on it instead of on a scrape error.
    """

    def __init__(self, database_url: str, *, settle_s: float = 30.0) -> None:
        self._url = database_url
        # How far the latency window trails now(): longer than any transaction writing the log.
        self._settle_s = settle_s
        self._latency = LatencyTotals()

    def describe(self) -> list[Metric]:
        # Without describe(), registering would call collect() and hit the database.
        return []

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily(PREFIX + "database_up", "1 when the last scrape read the database.")
        try:
            with connect(self._url, autocommit=True) as conn:
                _fold(conn)
                gauges = conn.execute(query("operations", "exporter_gauges")).fetchall()
                counters = conn.execute(query("operations", "exporter_counters")).fetchall()
                with self._latency.updating() as totals:
                    window = conn.execute(
                        query("operations", "exporter_latency_histogram"),
                        {"after": totals.after, "settle_s": self._settle_s},
                    ).fetchall()
                    totals.add_window(window)
        except (AlertDeliveryError, psycopg.Error) as exc:
            # A failed read must not turn the scrape into an HTTP 500.
            log.warning("exporter: cannot read the database: %s", _first_line(exc))
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from _gauge_families(gauges)
        yield from _counter_families(counters)
        yield _latency_family(self._latency)
        duration = GaugeMetricFamily(
            PREFIX + "scrape_duration_seconds", "Time the exporter spent reading the database."
        )
        duration.add_metric([], time.perf_counter() - started)
        yield duration


def build_registry(database_url: str, *, settle_s: float = 30.0) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(DatabaseCollector(database_url, settle_s=settle_s))
    return registry


def serve(
    database_url: str, host: str, port: int, *, settle_s: float = 30.0
) -> tuple[WSGIServer, threading.Thread]:
    """Start the exporter's HTTP server in a daemon thread; ``server.shutdown()`` stops it."""
    registry = build_registry(database_url, settle_s=settle_s)
    return start_http_server(port, addr=host, registry=registry)


def start_process_metrics_server(
    port: int, host: str = "127.0.0.1"
) -> tuple[WSGIServer, threading.Thread]:
    """Expose this process's own metrics (the default registry: process, platform, GC and
    whatever the caller registered) on ``host:port``. For workers and other long-lived processes.
    """
    return start_http_server(port, addr=host, registry=REGISTRY)


def exported_families() -> dict[str, str]:
    """Every metric family `alert-delivery exporter` serves -> its type, as in ``# TYPE``
    (a counter family ``x`` is exposed as ``x_total``, a histogram as ``x_bucket``/``_sum``/
    ``_count``). For the dashboard's and the alerting rules' tests."""
    families = {PREFIX + name: "gauge" for name in GAUGES}
    families |= {PREFIX + name: "counter" for name in COUNTERS}
    families[PREFIX + "attempt_latency_seconds"] = "histogram"
    families[PREFIX + "database_up"] = "gauge"
    families[PREFIX + "scrape_duration_seconds"] = "gauge"
    return families
