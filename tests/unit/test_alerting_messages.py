"""Pure pieces of alerting: detection message structure, fingerprints, silence windows."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from alert_delivery.alerting.fingerprint import pagerduty_dedup_key
from alert_delivery.alerting.from_detection import anomaly_alert, bottleneck_alert
from alert_delivery.alerting.labels import fingerprint, legacy_labels
from alert_delivery.alerting.silences import silence_window
from alert_delivery.errors import InvalidInput

HOUR = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)


def anomaly_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "anomaly_id": 5,
        "partition_start": HOUR,
        "operation_type": "merge",
        "anomaly_type": "COMBINED",
        "severity": "CRITICAL",
        "z_score": 4.25,
        "p99_ratio": 3.1,
        "samples": 120,
        "observed_mean_ms": 900.0,
        "observed_p99_ms": 2400.0,
        "baseline_mean_ms": 200.0,
        "baseline_p99_ms": 780.0,
        "metric_id": 4242,
        "duration_ms": 2600.0,
        "baseline_ms": 780.0,
        "detected_at": HOUR + timedelta(minutes=61),
    }
    row.update(overrides)
    return row


def test_anomaly_alert_carries_the_message_structure_of_the_issue() -> None:
    fields = anomaly_alert(anomaly_row())
    assert fields["title"] == "merge: combined latency anomaly"
    assert fields["operation_type"] == "merge" and fields["alert_type"] == "COMBINED"
    assert fields["severity"] == "CRITICAL" and fields["source"] == "detection"
    assert "z-score 4.25" in fields["description"] and "p99 3.10x baseline" in fields["description"]
    details = fields["details"]
    assert details["anomaly_type"] == "COMBINED"
    assert (details["z_score"], details["metric_id"]) == (4.25, 4242)
    assert (details["duration_ms"], details["baseline_ms"]) == (2600.0, 780.0)
    assert details["detected_at"] == "2026-03-01T13:01:00+00:00"
    assert fields["anomaly_id"] == 5 and fields["partition_start"] == HOUR


def test_non_finite_numbers_become_null_rather_than_invalid_json() -> None:
    details = anomaly_alert(anomaly_row(z_score=float("inf"), p99_ratio=None))["details"]
    assert details["z_score"] is None and details["p99_ratio"] is None


def test_bottleneck_alert_names_both_operations_and_the_type() -> None:
    fields = bottleneck_alert(
        {
            "correlation_id": 9,
            "partition_start": HOUR,
            "operation_a": "commit",
            "operation_b": "merge",
            "pearson_r": 0.93456,
            "samples": 168,
            "confidence": 0.99,
            "both_degraded": True,
            "bottleneck_type": "MERGE_PIPELINE_SATURATION",
            "recommendation": "Add merge workers.",
            "detected_at": HOUR,
        }
    )
    assert fields["operation_type"] == "commit+merge"
    assert fields["alert_type"] == "MERGE_PIPELINE_SATURATION"
    assert fields["severity"] == "CRITICAL"
    assert fields["details"]["bottleneck_type"] == "MERGE_PIPELINE_SATURATION"
    assert "r 0.935" in fields["description"] and "Add merge workers." in fields["description"]


def test_fingerprint_hashes_the_sorted_label_set() -> None:
    base = fingerprint(legacy_labels("detection", "merge", "STATISTICAL", "CRITICAL"))
    # Computed independently: names sorted, name \x1f value, pairs joined by \x1e.
    pairs = [
        ("alert_type", "STATISTICAL"),
        ("operation_type", "merge"),
        ("severity", "CRITICAL"),
        ("source", "detection"),
    ]
    text = "\x1e".join(f"{name}\x1f{value}" for name, value in pairs)
    assert base == hashlib.sha256(text.encode()).hexdigest()
    assert base == fingerprint(dict(reversed(pairs)))
    assert base != fingerprint(legacy_labels("detection", "merge", "STATISTICAL", "WARNING"))
    assert fingerprint({"a": "b\x1ec"}) != fingerprint({"a": "b", "c": ""})
    assert len(pagerduty_dedup_key(base)) <= 255


def test_silence_window_defaults_to_sixty_minutes() -> None:
    assert silence_window(now=NOW) == (NOW, NOW + timedelta(minutes=60))
    assert silence_window(minutes=5, now=NOW) == (NOW, NOW + timedelta(minutes=5))
    start = NOW + timedelta(hours=1)
    assert silence_window(start=start, now=NOW) == (start, start + timedelta(minutes=60))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": NOW, "end": NOW - timedelta(minutes=1)}, "end"),
        ({"start": NOW - timedelta(hours=2), "end": NOW - timedelta(hours=1)}, "end"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 5, "end": NOW + timedelta(hours=1)}, "minutes"),
        ({"end": datetime(2026, 3, 1, 13)}, "end"),
        ({"end": NOW + timedelta(days=91)}, "end"),
    ],
)
def test_malformed_silence_windows_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        silence_window(now=NOW, **kwargs)  # type: ignore[arg-type]
    assert caught.value.where == field
