"""alert_delivery.delivery.metrics: the engine's in-process metrics, read back from the registry
the worker's /metrics serves (values compared before/after, so the test order does not matter)."""

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alert_delivery.delivery import metrics
from alert_delivery.delivery.outcome import Verdict
from alert_delivery.delivery.registry import KINDS


def value(name: str, **labels: str) -> float:
    got = REGISTRY.get_sample_value(name, labels)
    assert got is not None, (name, labels)
    return got


def test_every_outcome_and_breaker_series_exists_at_zero_before_any_event() -> None:
    text = generate_latest(REGISTRY).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    deliveries = families["alert_delivery_engine_deliveries"]
    assert deliveries.type == "counter"
    pairs = {(s.labels["outcome"], s.labels["kind"]) for s in deliveries.samples}
    assert {(o, k) for o in metrics.OUTCOMES for k in (*KINDS, "other")} <= pairs
    breaker = families["alert_delivery_engine_breaker_transitions"]
    assert {s.labels["state"] for s in breaker.samples} >= set(metrics.BREAKER_STATES)
    assert {
        s.labels["kind"] for s in families["alert_delivery_engine_attempts_in_flight"].samples
    } >= set(KINDS)


def test_verdict_values_are_the_histogram_labels() -> None:
    assert {v.value for v in Verdict} == set(metrics.VERDICTS)


def test_observe_attempt_by_kind_and_verdict() -> None:
    h = "alert_delivery_engine_attempt_duration_seconds"
    count = REGISTRY.get_sample_value(h + "_count", {"kind": "slack", "verdict": "retry"}) or 0.0
    metrics.observe_attempt("slack", "retry", 30.0)
    metrics.observe_attempt("slack", "retry", 700.0)
    metrics.observe_attempt("slack", "retry", None)  # refused before sending: 0 s
    assert value(h + "_count", kind="slack", verdict="retry") == count + 3
    assert value(h + "_bucket", kind="slack", verdict="retry", le="0.05") >= 2
    assert value(h + "_bucket", kind="slack", verdict="retry", le="0.5") < value(
        h + "_bucket", kind="slack", verdict="retry", le="1.0"
    )


def test_unknown_labels_are_folded_into_other() -> None:
    h = "alert_delivery_engine_attempt_duration_seconds_count"
    before = REGISTRY.get_sample_value(h, {"kind": "other", "verdict": "other"}) or 0.0
    metrics.observe_attempt("https://hooks.example/secret", "teapot", 1.0)
    assert value(h, kind="other", verdict="other") == before + 1
    text = generate_latest(REGISTRY).decode()
    assert "hooks.example" not in text and "teapot" not in text


def test_in_flight_gauge_goes_up_and_back_down_even_on_error() -> None:
    g = "alert_delivery_engine_attempts_in_flight"
    base = value(g, kind="webhook")
    with metrics.attempt_in_flight("webhook"), metrics.attempt_in_flight("webhook"):
        assert value(g, kind="webhook") == base + 2
    with pytest.raises(RuntimeError), metrics.attempt_in_flight("webhook"):
        assert value(g, kind="webhook") == base + 1
        raise RuntimeError("boom")
    assert value(g, kind="webhook") == base


def test_count_outcomes_tallies_by_outcome_and_kind() -> None:
    c = "alert_delivery_engine_deliveries_total"
    before = {
        (o, k): value(c, outcome=o, kind=k)
        for o in ("delivered", "retry_scheduled", "dead_lettered")
        for k in ("pagerduty", "email")
    }
    metrics.count_outcomes(
        [
            ("delivered", "pagerduty"),
            ("delivered", "pagerduty"),
            ("retry_scheduled", "pagerduty"),
            ("dead_lettered", "email"),
        ]
    )
    after = {k: value(c, outcome=k[0], kind=k[1]) for k in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("delivered", "pagerduty"): 2,
        ("retry_scheduled", "pagerduty"): 1,
        ("dead_lettered", "pagerduty"): 0,
        ("delivered", "email"): 0,
        ("retry_scheduled", "email"): 0,
        ("dead_lettered", "email"): 1,
    }


def test_breaker_transition() -> None:
    c = "alert_delivery_engine_breaker_transitions_total"
    before = value(c, kind="mattermost", state="open")
    metrics.breaker_transition("mattermost", "open")
    assert value(c, kind="mattermost", state="open") == before + 1


def test_claim_succeeded_sets_the_time_and_counts_rows() -> None:
    rows = value("alert_delivery_engine_claimed_rows_total")
    metrics.claim_succeeded(7, now=1_700_000_000.0)
    assert value("alert_delivery_engine_last_claim_timestamp_seconds") == 1_700_000_000.0
    metrics.claim_succeeded(0, now=1_700_000_005.0)  # an empty claim still proves the loop lives
    assert value("alert_delivery_engine_last_claim_timestamp_seconds") == 1_700_000_005.0
    assert value("alert_delivery_engine_claimed_rows_total") == rows + 7
