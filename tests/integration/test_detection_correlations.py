"""Correlations and bottlenecks against synthetic truth, and backfill == live runs."""

import random
from datetime import datetime, timedelta

import psycopg

from alert_delivery.detection import synthetic
from alert_delivery.detection.anomalies import detect_anomalies
from alert_delivery.detection.bottlenecks import RECOMMENDATIONS
from alert_delivery.detection.correlations import detect_correlations
from alert_delivery.detection.settings import CorrelationSettings
from tests.support.detection import HOUR, NOW, by_hour, load, ramp, run_partition, snapshot

OPS = ["object_store_put", "pack_write", "merge", "wal_flush", "commit", "branch_create"]
LAST = NOW - HOUR
STORAGE_RAMP = [1 + 2 * (i / 23) ** 2 for i in range(24)]
MERGE_RAMP = [1.0] * 12 + [1 + 0.15 * i for i in range(1, 13)]


def degrading_spikes(end: datetime = NOW) -> list[synthetic.Spike]:
    return [
        *ramp("object_store_put", end, STORAGE_RAMP),
        *ramp("pack_write", end, STORAGE_RAMP),
        *ramp("merge", end, MERGE_RAMP),
        *ramp("wal_flush", end, MERGE_RAMP),
    ]


def test_co_degrading_pairs_get_their_bottleneck_type(conn: psycopg.Connection) -> None:
    load(conn, operations=OPS, spikes=degrading_spikes())
    run_partition(conn, LAST)
    pairs = {
        (r[0], r[1]): r[2:]
        for r in conn.execute(
            b"SELECT operation_a, operation_b, pearson_r, samples, confidence, both_degraded,"
            b" bottleneck_type, recommendation FROM alert_delivery.correlations"
            b" WHERE partition_start = %s",
            (LAST,),
        )
    }
    assert len(pairs) == 15
    r, n, conf, both, kind, text = pairs[("object_store_put", "pack_write")]
    assert r >= 0.75 and n == 24 and conf > 0.99 and both
    assert kind == "OBJECT_STORAGE_IO" and text == RECOMMENDATIONS[kind]
    r, n, conf, both, kind, _ = pairs[("merge", "wal_flush")]
    assert r >= 0.75 and both and kind == "SHARED_RESOURCE_CONTENTION"
    _, _, _, both, kind, text = pairs[("branch_create", "commit")]
    assert not both and kind is None and text is None
    summary = dict(
        conn.execute(b"SELECT bottleneck_type, pairs FROM alert_delivery.bottleneck_summary")
    )
    assert summary["OBJECT_STORAGE_IO"] == 1 and summary["SHARED_RESOURCE_CONTENTION"] >= 1


def test_independent_noise_is_not_strongly_correlated(conn: psycopg.Connection) -> None:
    load(conn, operations=OPS, seed=5)
    run_partition(conn, LAST)
    result = detect_correlations(conn, LAST, NOW)
    assert len(result.pairs) == 15
    assert all(c.bottleneck_type is None for c in result.pairs)
    # 15 pairs of 24 independent points: |r| >= 0.75 has p < 1e-4 per pair.
    assert result.strong == []


def test_lookback_window_and_missing_hours(conn: psycopg.Connection) -> None:
    load(conn, hours=30, operations=["merge", "commit"], spikes=ramp("merge", NOW, STORAGE_RAMP))
    conn.execute(
        b"DELETE FROM alert_delivery.performance_metrics"
        b" WHERE operation_type = 'commit' AND recorded_at >= %s AND recorded_at < %s",
        (NOW - 10 * HOUR, NOW - 4 * HOUR),
    )
    result = detect_correlations(conn, LAST, NOW)
    (pair,) = result.pairs
    assert pair.samples == 18  # 24 hours, 6 without commit metrics
    assert result.window_start == NOW - timedelta(hours=24)
    hours = conn.execute(
        b"SELECT count(DISTINCT hour) FROM alert_delivery.metric_rollups_hourly"
    ).fetchone()
    assert hours == (24,)


def test_backfill_gives_exactly_the_live_results(conn: psycopg.Connection) -> None:
    start = NOW - 24 * HOUR  # 12:00 to 12:00: the range crosses a day and a baseline version
    spikes = [
        *degrading_spikes(NOW - 3 * HOUR),
        synthetic.Spike("commit", start + 13 * HOUR, 4.0),
        synthetic.Spike("branch_create", start + 2 * HOUR, 1.8),
    ]
    rows = by_hour(
        synthetic.generate_metrics(
            now=NOW, hours=9 * 24, rows_per_hour=20, operations=OPS, seed=9, spikes=spikes
        )
    )
    history = [row for hour, batch in rows.items() if hour < start for row in batch]
    synthetic.load_metric_rows(conn, history)
    partitions = [start + HOUR * i for i in range(24)]
    for hour in partitions:  # live: each hour runs once its metrics have arrived
        synthetic.load_metric_rows(conn, rows[hour])
        run_partition(conn, hour)
    live = snapshot(conn)
    assert len(live["anomalies"]) >= 5 and len(live["correlations"]) == 24 * 15
    assert any(row[9] == "OBJECT_STORAGE_IO" for row in live["correlations"])

    # The outage: detection results, rollups and cached baselines are gone; metrics remain.
    for table in ("anomalies", "correlations", "metric_rollups_hourly", "baseline_versions"):
        conn.execute(f"DELETE FROM alert_delivery.{table}".encode())
    backfill = partitions[:]
    random.Random(4).shuffle(backfill)  # a backfill gives no ordering guarantee
    for hour in backfill:
        run_partition(conn, hour)
    assert snapshot(conn) == live


def test_strong_r_from_settings_decides_which_pairs_get_a_bottleneck(
    conn: psycopg.Connection,
) -> None:
    load(conn, operations=OPS, spikes=degrading_spikes())
    detect_anomalies(conn, LAST, NOW)
    default = detect_correlations(conn, LAST, NOW)
    classified = {(c.operation_a, c.operation_b): c.pearson_r for c in default.bottlenecks}
    assert len(set(classified.values())) >= 2, classified
    # Between the weakest and the strongest classified pair: some keep their type, some lose it.
    threshold = (min(classified.values()) + max(classified.values())) / 2
    assert threshold > 0.75
    stricter = detect_correlations(conn, LAST, NOW, CorrelationSettings(strong_r=threshold))
    expected = {pair for pair, r in classified.items() if r >= threshold}
    assert expected and expected != set(classified)
    assert stored_bottlenecks(conn) == expected
    assert {(c.operation_a, c.operation_b) for c in stricter.bottlenecks} == expected
    assert stricter.strong_r == threshold
    assert all(c.pearson_r >= threshold for c in stricter.strong)
    assert len(stricter.strong) < len(default.strong)
    # Same pairs stored either way: the threshold changes classification, not the r rows.
    assert len(stricter.pairs) == len(default.pairs) == 15
    detect_correlations(conn, LAST, NOW)
    assert stored_bottlenecks(conn) == set(classified)


def stored_bottlenecks(conn: psycopg.Connection) -> set[tuple[str, str]]:
    rows = conn.execute(
        b"SELECT operation_a, operation_b FROM alert_delivery.correlations"
        b" WHERE partition_start = %s AND bottleneck_type IS NOT NULL",
        (LAST,),
    ).fetchall()
    return {(str(a), str(b)) for a, b in rows}
