"""In-process metrics of the delivery engine, on prometheus_client's default registry.

A worker started with ``--metrics-port`` serves them (with the process metrics) through
``alert_delivery.exporter.start_process_metrics_server``; in a Dagster run they cost nothing and
are never scraped (the database-wide counters of ``alert-delivery exporter`` cover those runs).
Every series is per process, so PromQL sums across worker instances:
``sum by (outcome) (rate(alert_delivery_engine_deliveries_total[5m]))``.

Labels are bounded: ``kind`` is one of the webhook kinds (``registry.KINDS``), never a webhook
name or id; ``verdict``, ``outcome`` and ``state`` come from fixed sets. Anything else is
counted as ``other`` rather than creating a new series.

Call sites (``alert_delivery/delivery/lanes.py``): ``Lanes._lane`` wraps each send in
``attempt_in_flight``; ``Decisions.done`` calls ``observe_attempt`` for every finished attempt
(inbox rows excluded); ``Recorder._write`` calls ``count_outcomes`` once a group's outcomes are
committed; ``Engine.claim`` calls ``claim_succeeded``.

``alert_delivery/delivery/store.py`` / ``Engine.process`` (optional)
    Breaker transitions happen inside SQL (``record_health`` and the claim). To count them per
    process, have ``record_health`` return ``(webhook_id, old_state, new_state)`` for the rows
    whose state changed and call ``breaker_transition(kind, new_state)`` for each. The database
    already counts every transition of every process, whoever caused it:
    ``alert_delivery_breaker_transitions_total`` on ``alert-delivery exporter``.
"""

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from alert_delivery.delivery.registry import KINDS

PREFIX = "alert_delivery_engine_"
OTHER = "other"
VERDICTS = ("delivered", "retry", "permanent", "gone", "throttled")
"""``outcome.Verdict`` values (the HTTP classification of one attempt)."""
OUTCOMES = ("delivered", "retry_scheduled", "dead_lettered", "deferred", "released", "throttled")
"""The log events ``outcome.decide`` and the engine record for a claimed row."""
BREAKER_STATES = ("closed", "open", "half_open")
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Same bounds as the exporter's ``alert_delivery_attempt_latency_seconds``."""

ATTEMPT_DURATION = Histogram(
    PREFIX + "attempt_duration_seconds",
    "Duration of this process's delivery attempts (request sent to response read).",
    ["kind", "verdict"],
    buckets=BUCKETS_S,
)
IN_FLIGHT = Gauge(
    PREFIX + "attempts_in_flight", "Attempts this process has on the wire now.", ["kind"]
)
DELIVERIES = Counter(
    PREFIX + "deliveries",
    "Claimed rows this process recorded, by outcome (the delivery_log event) and kind.",
    ["outcome", "kind"],
)
BREAKER_TRANSITIONS = Counter(
    PREFIX + "breaker_transitions",
    "Circuit-breaker transitions this process recorded, by new state and kind.",
    ["kind", "state"],
)
CLAIMED = Counter(PREFIX + "claimed_rows", "Queue rows this process leased.")
LAST_CLAIM = Gauge(
    PREFIX + "last_claim_timestamp_seconds",
    "Unix time of this process's last claim that reached the database (rows or not).",
)

FAMILIES = (
    ATTEMPT_DURATION,
    IN_FLIGHT,
    DELIVERIES,
    BREAKER_TRANSITIONS,
    CLAIMED,
    LAST_CLAIM,
)


def _kind(kind: str) -> str:
    return kind if kind in KINDS else OTHER


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


def observe_attempt(kind: str, verdict: str, latency_ms: float | None) -> None:
    """One attempt's duration by kind and verdict (``Verdict.value``)."""
    seconds = max(0.0, latency_ms or 0.0) / 1000.0
    # Children looked up once per (kind, verdict): ``labels()`` per attempt, here and for the
    # in-flight gauge, was 7 % of the engine's profiled time per delivery.
    child = _DURATION.get((kind, verdict))
    if child is None:
        child = ATTEMPT_DURATION.labels(_kind(kind), _one_of(verdict, VERDICTS))
        _DURATION[(kind, verdict)] = child
    child.observe(seconds)


class _InFlight:
    """Counts an attempt in ``attempts_in_flight`` while the block runs (even if it raises)."""

    __slots__ = ("_gauge",)

    def __init__(self, kind: str) -> None:
        self._gauge = IN_FLIGHT.labels(kind)

    def __enter__(self) -> None:
        self._gauge.inc()

    def __exit__(self, *exc: object) -> None:
        self._gauge.dec()


def attempt_in_flight(kind: str) -> _InFlight:
    """``with attempt_in_flight(kind):`` counts the attempt while the block runs."""
    return _IN_FLIGHT.get(kind) or _IN_FLIGHT[OTHER]


def count_outcomes(outcomes: Iterable[tuple[str, str]]) -> None:
    """Recorded outcomes as ``(log_event, kind)`` pairs; one ``inc`` per distinct pair."""
    tally: dict[tuple[str, str], int] = {}
    for event, kind in outcomes:
        key = (_one_of(event, OUTCOMES), _kind(kind))
        tally[key] = tally.get(key, 0) + 1
    for (event, kind), n in tally.items():
        DELIVERIES.labels(event, kind).inc(n)


def breaker_transition(kind: str, state: str) -> None:
    """A webhook's breaker entered ``state`` (closed, open or half_open)."""
    BREAKER_TRANSITIONS.labels(_kind(kind), _one_of(state, BREAKER_STATES)).inc()


def claim_succeeded(rows: int, *, now: float | None = None) -> None:
    """A claim statement returned (``rows`` leased, possibly 0): the claim loop is alive."""
    CLAIMED.inc(rows)
    LAST_CLAIM.set(time.time() if now is None else now)


_IN_FLIGHT: dict[str, _InFlight] = {}
_DURATION: dict[tuple[str, str], Any] = {}


def _initialise() -> None:
    """Create every counter and gauge series at 0, so that ``rate()`` and ``increase()`` see the
    first event of each series (a series born at 1 hides its first increment)."""
    for kind in (*KINDS, OTHER):
        _IN_FLIGHT[kind] = _InFlight(kind)
        for outcome in OUTCOMES:
            DELIVERIES.labels(outcome, kind)
        for state in BREAKER_STATES:
            BREAKER_TRANSITIONS.labels(kind, state)


_initialise()
