"""Prometheus exporter: `/metrics` computed from the database on every scrape.

Two SQL queries per scrape (``exporter_gauges`` and ``exporter_latency_histogram`` in
``sql/queries/operations.sql``); PostgreSQL does the aggregation, Python only relabels the rows
and adds each new latency window to running totals (see ``operations/latency_totals.py``).
Labels carry webhook *names*: a webhook URL never reaches the exposition.
"""

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from alert_delivery.db import connect, query
from alert_delivery.errors import AlertDeliveryError
from alert_delivery.operations.latency_totals import LatencyTotals

log = logging.getLogger(__name__)

PREFIX = "alert_delivery_"


@dataclass(frozen=True)
class GaugeSpec:
    help: str
    labels: tuple[str, ...]


# Metric name (without prefix) as the SQL returns it -> help text and label order.
GAUGES: dict[str, GaugeSpec] = {
    "deliveries": GaugeSpec(
        "Delivery queue rows by webhook and status.", ("webhook", "kind", "status")
    ),
    "queue_depth": GaugeSpec("Delivery queue rows by status.", ("status",)),
    "oldest_pending_age_seconds": GaugeSpec(
        "Age of the oldest pending delivery (0 when none is pending).", ()
    ),
    "dead_letters": GaugeSpec("Deliveries in the dead-letter queue.", ()),
    "webhook_breaker_state": GaugeSpec(
        "Circuit breaker state per webhook (1 for the current state).", ("webhook", "state")
    ),
    "webhook_consecutive_failures": GaugeSpec(
        "Consecutive failed attempts per webhook.", ("webhook",)
    ),
    "webhook_active": GaugeSpec(
        "1 when the webhook is active, 0 when disabled.", ("webhook", "kind")
    ),
    "live_workers": GaugeSpec("Workers with a heartbeat within the last 30 seconds.", ()),
    "alerts": GaugeSpec("Alerts by status and severity.", ("status", "severity")),
}


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
                gauges = conn.execute(query("operations", "exporter_gauges")).fetchall()
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
