"""Row validation: every reason a metric row is refused, and what a valid row becomes."""

from datetime import UTC, datetime, timedelta

import pytest

from alert_delivery.detection.rows import RowError, build_row

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
GOOD = {"operation_type": "merge", "duration_ms": "12.5", "recorded_at": "2026-03-10T11:00:00Z"}


def test_valid_row_is_normalised() -> None:
    row = build_row(GOOD | {"status": " Conflict ", "attributes": '{"repo": "a"}'}, NOW)
    assert row.operation_type == "merge"
    assert row.duration_ms == 12.5
    assert row.recorded_at == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    assert row.status == "conflict"
    assert row.attributes == {"repo": "a"}


def test_defaults_and_naive_timestamps_are_utc() -> None:
    row = build_row(GOOD | {"recorded_at": "2026-03-10 11:30:00"}, NOW)
    assert row.status == "success"
    assert row.attributes == {}
    assert row.recorded_at.tzinfo is not None
    assert row.recorded_at == datetime(2026, 3, 10, 11, 30, tzinfo=UTC)


def test_json_numbers_and_objects_are_accepted() -> None:
    row = build_row(GOOD | {"duration_ms": 7, "attributes": {"k": 1}}, NOW)
    assert (row.duration_ms, row.attributes) == (7.0, {"k": 1})


def test_up_to_five_minutes_ahead_is_clock_skew_not_an_error() -> None:
    ahead = (NOW + timedelta(minutes=4, seconds=59)).isoformat()
    assert build_row(GOOD | {"recorded_at": ahead}, NOW).recorded_at > NOW


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"operation_type": ""}, "operation_type is empty"),
        ({"operation_type": "   "}, "operation_type is empty"),
        ({"operation_type": None}, "operation_type is empty"),
        ({"duration_ms": "-1"}, "duration_ms is negative"),
        ({"duration_ms": "nan"}, "duration_ms is NaN"),
        ({"duration_ms": "NaN"}, "duration_ms is NaN"),
        ({"duration_ms": "inf"}, "duration_ms is infinite"),
        ({"duration_ms": "-Infinity"}, "duration_ms is infinite"),
        ({"duration_ms": "12ms"}, "duration_ms is not a number"),
        ({"duration_ms": ""}, "duration_ms is not a number"),
        ({"duration_ms": True}, "duration_ms is not a number"),
        ({"duration_ms": None}, "duration_ms is not a number"),
        ({"recorded_at": "yesterday"}, "recorded_at is not an ISO 8601 timestamp"),
        ({"recorded_at": "2026-13-40T00:00:00"}, "recorded_at is not an ISO 8601 timestamp"),
        ({"recorded_at": ""}, "recorded_at is not a timestamp"),
        ({"recorded_at": 1700000000}, "recorded_at is not a timestamp"),
        ({"recorded_at": "2026-03-10T12:05:01+00:00"}, "more than 5 minutes in the future"),
        ({"attributes": "{not json"}, "attributes is not valid JSON"),
        ({"attributes": "[1, 2]"}, "attributes is not a JSON object"),
        ({"status": 3}, "status is not text"),
        ({"operation_type": "mer\x00ge"}, "operation_type contains a NUL character"),
        ({"attributes": '{"a": NaN}'}, "attributes is not valid JSON"),
        ({"attributes": '{"a": "\\u0000"}'}, "attributes holds a character PostgreSQL cannot"),
    ],
)
def test_bad_rows_are_refused_with_a_reason(change: dict[str, object], reason: str) -> None:
    with pytest.raises(RowError) as info:
        build_row(GOOD | change, NOW)
    assert reason in str(info.value)
