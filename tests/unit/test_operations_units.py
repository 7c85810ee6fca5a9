"""Pure operations helpers: latency running totals and the sensor/schedule list."""

from datetime import UTC, datetime

from alert_delivery.operations.latency_totals import BEGINNING, LatencyTotals
from alert_delivery.operations.ticks import InstigatorTick, format_ticks, with_declared

T1 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 1, 1, 10, 1, tzinfo=UTC)
B = [5.0, 10.0]


def test_windows_add_up_per_webhook() -> None:
    totals = LatencyTotals()
    assert totals.after == BEGINNING
    totals.add_window([(T1, "a", B, [1.0, 2.0], 3.0, 40.0), (T1, "b", B, [0.0, 0.0], 1.0, 99.0)])
    totals.add_window([(T2, "a", B, [0.0, 1.0], 1.0, 8.0)])
    assert totals.after == T2
    [(name_a, a), (name_b, b)] = totals.snapshot()
    assert (name_a, a.cumulative, a.total, a.sum_ms) == ("a", [1.0, 3.0], 4.0, 48.0)
    assert (name_b, b.cumulative, b.total, b.sum_ms) == ("b", [0.0, 0.0], 1.0, 99.0)


def test_an_empty_window_only_moves_the_horizon() -> None:
    totals = LatencyTotals()
    totals.add_window([(T1, None, None, None, None, None)])
    assert totals.after == T1
    assert totals.snapshot() == []


def test_changed_buckets_restart_the_series() -> None:
    totals = LatencyTotals()
    totals.add_window([(T1, "a", B, [1.0, 1.0], 1.0, 4.0)])
    totals.add_window([(T2, "a", [5.0, 10.0, 20.0], [0.0, 0.0, 1.0], 1.0, 15.0)])
    [(_, a)] = totals.snapshot()
    assert (a.bounds_ms, a.cumulative, a.total) == ([5.0, 10.0, 20.0], [0.0, 0.0, 1.0], 1.0)


def test_snapshot_is_a_copy() -> None:
    totals = LatencyTotals()
    totals.add_window([(T1, "a", B, [1.0, 1.0], 1.0, 4.0)])
    totals.snapshot()[0][1].cumulative[0] = 100.0
    assert totals.snapshot()[0][1].cumulative == [1.0, 1.0]


def test_declared_instigators_fill_in_the_unrecorded_ones() -> None:
    recorded = InstigatorTick("s1", "sensor", False, T1, "success", None)
    merged = with_declared([recorded], [("s1", "sensor", True), ("daily", "schedule", False)])
    assert merged == [
        InstigatorTick("daily", "schedule", False, None, None, None),
        recorded,  # the instance's state wins over the default status
    ]
    assert format_ticks(merged) == [
        "Sensors and schedules: 2",
        "  schedule daily [stopped] no ticks yet",
        "  sensor   s1 [stopped] last tick 2026-01-01 10:00:00Z success",
    ]
