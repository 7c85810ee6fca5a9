"""Pure detection maths: Pearson r, confidence, severity classification, bottleneck types."""

import math
import random
from datetime import UTC, datetime

import pytest

from alert_delivery.detection.anomalies import Observed, Reference, classify
from alert_delivery.detection.baselines import BaselineStats, percent_change, validate_stats
from alert_delivery.detection.bottlenecks import (
    MERGE,
    OBJECT_STORAGE,
    QUERY_CACHE,
    RECOMMENDATIONS,
    SHARED,
    TRANSACTION_LOG,
    classify_pair,
    family_of,
)
from alert_delivery.detection.correlations import confidence, correlate, pearson
from alert_delivery.detection.report import markdown_table, sparkline
from alert_delivery.detection.settings import (
    AnomalySettings,
    BaselineSettings,
    CorrelationSettings,
)
from alert_delivery.errors import InvalidInput

REF = Reference(mean_ms=100.0, stddev_ms=20.0, p99_ms=160.0, samples=1000)


def observed(mean: float, p99: float, n: int = 50) -> Observed:
    return Observed("merge", n, mean, p99, worst_metric_id=1, worst_ms=p99)


def test_pearson_matches_known_values() -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert pearson(xs, [2 * x + 1 for x in xs]) == pytest.approx(1.0)
    assert pearson(xs, [-x for x in xs]) == pytest.approx(-1.0)
    assert pearson(xs, [1.0, 3.0, 2.0, 5.0, 4.0]) == pytest.approx(0.8)
    assert pearson(xs, [3.0] * 5) is None
    assert pearson([1.0], [2.0]) is None


def test_pearson_of_independent_noise_is_small() -> None:
    rng = random.Random(3)
    xs = [rng.gauss(0, 1) for _ in range(2000)]
    ys = [rng.gauss(0, 1) for _ in range(2000)]
    r = pearson(xs, ys)
    assert r is not None and abs(r) < 0.1


def test_confidence_grows_with_r_and_n() -> None:
    assert confidence(0.9, 3) == 0.0
    assert confidence(0.0, 24) == pytest.approx(0.0)
    assert confidence(0.3, 10) < confidence(0.5, 10) < confidence(0.5, 30) <= 1.0
    # r = 0.75 over 24 hours: Fisher z = atanh(0.75) * sqrt(21) = 4.45 -> p < 1e-5.
    assert confidence(0.75, 24) == pytest.approx(
        math.erf(math.atanh(0.75) * math.sqrt(21) / 2**0.5)
    )
    assert confidence(-0.9, 24) == confidence(0.9, 24)


@pytest.mark.parametrize(
    ("mean", "p99", "kind", "severity"),
    [
        (400.0, 700.0, "COMBINED", "CRITICAL"),
        (160.0, 260.0, "COMBINED", "WARNING"),
        (125.0, 200.0, "STATISTICAL", "INFO"),
        (101.0, 330.0, "P99_DEGRADATION", "CRITICAL"),
        (101.0, 250.0, "P99_DEGRADATION", "WARNING"),
    ],
)
def test_classification_and_severity(mean: float, p99: float, kind: str, severity: str) -> None:
    found = classify(observed(mean, p99), REF, AnomalySettings())
    assert found is not None
    assert (found.anomaly_type, found.severity) == (kind, severity)


def test_normal_faster_or_tiny_partitions_are_not_anomalies() -> None:
    settings = AnomalySettings()
    assert classify(observed(103.0, 170.0), REF, settings) is None
    assert classify(observed(60.0, 90.0), REF, settings) is None
    assert classify(observed(900.0, 900.0, n=4), REF, settings) is None


def test_z_score_uses_the_standard_error_of_the_mean() -> None:
    found = classify(observed(110.0, 150.0, n=100), REF, AnomalySettings())
    assert found is not None and found.z_score == pytest.approx(10 / (20 / 10))
    assert found.anomaly_type == "STATISTICAL"


def test_thresholds_are_configurable() -> None:
    strict = AnomalySettings(warning_ratio=1.1, critical_ratio=1.2)
    found = classify(observed(125.0, 200.0), REF, strict)
    assert found is not None and found.severity == "CRITICAL"
    lenient = AnomalySettings(z_threshold=100.0, p99_ratio_threshold=5.0)
    assert classify(observed(160.0, 260.0), REF, lenient) is None


@pytest.mark.parametrize(
    ("a", "b", "kind"),
    [
        ("merge", "rebase", MERGE),
        ("object_store_get", "pack_write", OBJECT_STORAGE),
        ("query_cache_lookup", "cache_warm", QUERY_CACHE),
        ("commit", "wal_flush", TRANSACTION_LOG),
        ("merge", "wal_flush", SHARED),
        ("diff", "clone", SHARED),
    ],
)
def test_bottleneck_types_from_families(a: str, b: str, kind: str) -> None:
    assert classify_pair(a, b) == (kind, RECOMMENDATIONS[kind])


def test_family_map_is_configurable() -> None:
    families = (("diff*", OBJECT_STORAGE), ("clone", OBJECT_STORAGE))
    assert family_of("diff_tree", families) == OBJECT_STORAGE
    assert classify_pair("diff", "clone", families)[0] == OBJECT_STORAGE


def test_correlate_classifies_only_strong_pairs_that_both_degrade() -> None:
    hours = list(range(10))
    rising = {h: float(h * h) for h in hours}
    series = {
        "object_store_put": rising,
        "pack_write": dict(rising),
        "diff": {h: 1.0 for h in hours},
    }
    series["diff"][3] = 2.0
    pairs = {
        (c.operation_a, c.operation_b): c
        for c in correlate(series, {"object_store_put", "pack_write"}, CorrelationSettings())
    }
    strong = pairs[("object_store_put", "pack_write")]
    assert strong.pearson_r == pytest.approx(1.0)
    assert strong.bottleneck_type == OBJECT_STORAGE and strong.both_degraded
    weak = pairs[("diff", "object_store_put")]
    assert weak.bottleneck_type is None and not weak.both_degraded
    undegraded = correlate(series, {"pack_write"}, CorrelationSettings())
    assert all(c.bottleneck_type is None for c in undegraded)


def test_percentile_ordering_is_validated() -> None:
    good = BaselineStats("merge", 100, 10.0, 20.0, 30.0, 12.0, 4.0)
    assert validate_stats(good) is None
    bad = BaselineStats("merge", 100, 10.0, 40.0, 30.0, 12.0, 4.0)
    assert "percentiles out of order" in (validate_stats(bad) or "")
    assert validate_stats(BaselineStats("m", 100, 1.0, 2.0, math.nan, 1.0, 1.0)) is not None


def test_percent_change() -> None:
    assert percent_change(None, 5.0) is None
    assert percent_change(0.0, 5.0) is None
    assert percent_change(100.0, 125.0) == pytest.approx(25.0)
    assert percent_change(100.0, 80.0) == pytest.approx(-20.0)


@pytest.mark.parametrize("days", [0, -1, 366, 1000])
def test_window_outside_1_to_365_days_is_an_error(days: int) -> None:
    with pytest.raises(InvalidInput, match="window_days"):
        BaselineSettings(window_days=days)


def test_settings_bounds() -> None:
    assert BaselineSettings(window_days=1).window_days == 1
    assert BaselineSettings(window_days=365).window_days == 365
    with pytest.raises(InvalidInput):
        BaselineSettings(min_samples=5)
    with pytest.raises(InvalidInput):
        AnomalySettings(warning_ratio=3.0, critical_ratio=2.0)
    with pytest.raises(InvalidInput):
        CorrelationSettings(lookback_hours=1)


@pytest.mark.parametrize("r", [0.0, -0.5, 1.0000001, 2.0, math.nan, math.inf, -math.inf])
def test_strong_r_outside_0_to_1_or_not_finite_is_one_line_naming_it(r: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        CorrelationSettings(strong_r=r)
    message = str(caught.value)
    assert message.startswith("strong_r: must be a finite number with 0 < r <= 1, got ")
    assert "\n" not in message


@pytest.mark.parametrize("r", [1e-9, 0.5, 0.75, 1.0])
def test_strong_r_in_range_is_accepted(r: float) -> None:
    assert CorrelationSettings(strong_r=r).strong_r == r


def test_markdown_and_sparkline() -> None:
    table = markdown_table(("a", "b"), [("x", 1.234), ("y", None)])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x | 1.23 |", "| y | - |"]
    assert sparkline([1.0, 1.0, 8.0]) == "▁▁█"
    assert sparkline([]) == ""


def test_vectorised_and_pairwise_pearson_agree() -> None:
    rng = random.Random(8)
    hours = [datetime(2026, 3, 1, h, tzinfo=UTC) for h in range(24)]
    series = {f"op{i}": {h: rng.gauss(10, 2) for h in hours} for i in range(5)}
    series["flat"] = dict.fromkeys(hours, 3.0)
    gappy = dict(series["op0"])
    del gappy[hours[5]]
    series["gappy"] = gappy
    pairs = correlate(series, set(), CorrelationSettings())
    assert len(pairs) == 15  # 7 series, 21 pairs, the 6 with the constant one have no r
    for c in pairs:
        sa, sb = series[c.operation_a], series[c.operation_b]
        common = sorted(sa.keys() & sb.keys())
        assert c.samples == len(common)
        expected = pearson([sa[h] for h in common], [sb[h] for h in common])
        assert c.pearson_r == pytest.approx(expected, abs=1e-12)
    gap = next(c for c in pairs if {c.operation_a, c.operation_b} == {"gappy", "op0"})
    assert gap.samples == 23 and gap.pearson_r == pytest.approx(1.0)
