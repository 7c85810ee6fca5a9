"""Fuzzing of what users type and send (no database): a value or a one-line error, never a crash.

Derandomized: every run tries the same examples, so a failure reproduces and CI is stable.
"""

import io
import ipaddress
import json
import math
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alert_delivery.delivery import ssrf
from alert_delivery.delivery.dlq import MAX_ID, check_ids
from alert_delivery.delivery.limits import (
    MAX_RATE_PER_S,
    MAX_RETRY_DELAY_S,
    MIN_RATE_PER_S,
    check_rate_limit,
    check_retry_schedule,
    finite_in_range,
    parse_retry_schedule,
)
from alert_delivery.detection.copy_text import copy_line
from alert_delivery.detection.ingest import csv_items, jsonl_items
from alert_delivery.detection.rows import COLUMNS, RowError, build_row
from alert_delivery.errors import InvalidInput, TargetForbidden
from alert_delivery.inputs import parse_time

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PATH = Path("fuzz.csv")


def one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, repr(text)


# Text that looks like what the parsers expect often enough to reach deep branches.
numberish = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "1_000", " 5 ", "", "0x10", "1e-400", "٣"]),
    st.text(max_size=12),
)
stamp = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["2026-03-10", "2026-03-10T12:00:00Z", "9999-12-31T23:59:59+14:00", "x"]),
    st.text(max_size=30),
)
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@FUZZ
@example({"operation_type": "m", "duration_ms": 10**400, "recorded_at": "2026-03-10"})
@example({"operation_type": "\ud800", "duration_ms": 1, "recorded_at": "2026-03-10"})
@example({"operation_type": "m", "duration_ms": 1, "recorded_at": "0001-01-01T00:00:00+14:00"})
@given(
    st.dictionaries(
        st.sampled_from(COLUMNS),
        st.one_of(json_value, numberish, stamp),
    )
)
def test_rows_are_built_or_refused_with_a_reason(fields: dict[str, Any]) -> None:
    try:
        build_row(fields, NOW)
    except RowError as exc:
        one_line(exc)


@FUZZ
@example("m", 10**400, "2026-03-10", None, None)
@example("m", "\u0661\u0662", "2026-03-10T11:00:00,5", None, None)
@example("\ud800", 1, "2026-03-10", None, None)
@given(
    op=st.one_of(st.text(max_size=10), json_value),
    duration=st.one_of(numberish, json_value),
    recorded_at=st.one_of(stamp, json_value),
    status=st.one_of(st.none(), st.text(max_size=10), json_value),
    attrs=st.one_of(st.none(), json_value, json_value.map(json.dumps)),
)
def test_the_fast_path_accepts_only_what_the_slow_path_accepts(
    op: Any, duration: Any, recorded_at: Any, status: Any, attrs: Any
) -> None:
    line = copy_line(op, duration, recorded_at, status, attrs, NOW)
    if line is not None:
        fields = {"operation_type": op, "duration_ms": duration, "recorded_at": recorded_at}
        row = build_row(fields | {"status": status, "attributes": attrs}, NOW)
        assert line.count("\t") == 4 and line.endswith("\n") and line.count("\n") == 1
        # What COPY will read is what the slow path validated (ASCII spellings PostgreSQL reads
        # as Python does).
        _, duration_text, _, stamp_text, _ = line.rstrip("\n").split("\t")
        assert duration_text.isascii() and float(duration_text) == row.duration_ms
        assert stamp_text.isascii() and datetime.fromisoformat(stamp_text) == row.recorded_at


csv_field = st.one_of(numberish, stamp, st.text(alphabet=string.printable + "é\u2028\ufeff"))


@FUZZ
@given(
    header=st.lists(st.sampled_from([*COLUMNS, "", "x", " status "]), max_size=7),
    rows=st.lists(st.lists(csv_field, max_size=7), max_size=6),
    raw_tail=st.text(max_size=40),
)
def test_csv_gives_rows_or_one_line_errors(
    header: list[str], rows: list[list[str]], raw_tail: str
) -> None:
    out = io.StringIO(newline="")
    import csv

    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue() + raw_tail
    try:
        for number, line, reason in csv_items(PATH, io.StringIO(text, newline=""), NOW):
            assert number >= 1 and (line is None) != (reason is None)
            if reason is not None:
                one_line(RowError(reason))
    except InvalidInput as exc:
        one_line(exc)
        assert str(exc).startswith(f"{PATH}:")


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.dictionaries(st.sampled_from([*COLUMNS, "x"]), st.one_of(json_value, stamp)).map(
                json.dumps
            ),
            st.text(max_size=30),
            st.just("[" * 5000),
        ),
        max_size=6,
    )
)
def test_jsonl_gives_rows_or_reasons(lines: list[str]) -> None:
    text = "\n".join(line.replace("\n", " ") for line in lines)
    for number, line, reason in jsonl_items(io.StringIO(text, newline=""), NOW):
        assert number >= 1 and (line is None) != (reason is None)
        if reason is not None:
            one_line(RowError(reason))


# URLs: the SSRF guard never crashes and never lets a non-https or forbidden target through.
host = st.one_of(
    st.ip_addresses().map(lambda a: f"[{a}]" if a.version == 6 else str(a)),
    st.sampled_from(
        ["localhost", "example.com", "0x7f.1", "017700000001", "2130706433", "[::ffff:10.0.0.1]"]
    ),
    st.from_regex(r"[a-z0-9.\-_]{1,20}", fullmatch=True),
    st.text(max_size=20),
)
url = st.one_of(
    st.builds(
        lambda scheme, h, port, path: f"{scheme}://{h}{port}{path}",
        st.sampled_from(["https", "http", "HTTPS", "ftp", "file", "", "smtps"]),
        host,
        st.sampled_from(["", ":443", ":0", ":99999", ":x", "@"]),
        st.text(max_size=15),
    ),
    st.text(max_size=60),
)


@FUZZ
@given(url=url, resolved=st.lists(st.ip_addresses(), min_size=1, max_size=3))
def test_the_ssrf_guard_refuses_or_accepts_only_public_https(
    url: str, resolved: list[ipaddress.IPv4Address | ipaddress.IPv6Address]
) -> None:
    with mock.patch.object(ssrf, "resolve_host", lambda _h, _p: resolved):
        try:
            ssrf.check_url(url, [], resolve=True)
        except TargetForbidden as exc:
            one_line(exc)
            return
    parts = ssrf.urlsplit(url)
    assert parts.scheme == "https"
    literal = ssrf.parse_ip(parts.hostname or "")
    for addr in [literal] if literal is not None else resolved:
        assert ssrf.forbidden_reason(addr) is None, (url, addr)
    assert ssrf.redact_url(url).startswith("https://")


@FUZZ
@given(st.text(max_size=80))
def test_redaction_never_shows_a_path(url: str) -> None:
    shown = ssrf.redact_url(url)
    assert shown == "<malformed URL>" or shown.endswith("/…")


# Numeric and time flags.
@FUZZ
@given(st.one_of(st.floats(), st.integers(min_value=-(10**400), max_value=10**400)))
def test_rate_limits_are_finite_and_bounded(value: float) -> None:
    try:
        rate = check_rate_limit(value)
    except InvalidInput as exc:
        one_line(exc)
        assert str(exc).startswith("--rate-limit: ")
        return
    assert math.isfinite(rate) and MIN_RATE_PER_S <= rate <= MAX_RATE_PER_S


@FUZZ
@given(st.one_of(st.text(max_size=40), st.lists(numberish, max_size=5).map(",".join)))
def test_retry_schedules_parse_or_refuse(text: str) -> None:
    try:
        steps = parse_retry_schedule(text)
    except InvalidInput as exc:
        one_line(exc)
        return
    if steps is not None:
        assert steps and all(0 <= s <= MAX_RETRY_DELAY_S for s in steps)
        assert check_retry_schedule(steps) == steps


@FUZZ
@given(st.lists(st.one_of(st.integers(), st.floats(), st.booleans(), st.text()), max_size=5))
def test_retry_schedule_lists_from_python(values: list[Any]) -> None:
    try:
        steps = check_retry_schedule(values)
    except InvalidInput as exc:
        one_line(exc)
        return
    assert steps and all(type(s) is int and 0 <= s <= MAX_RETRY_DELAY_S for s in steps)


@FUZZ
@given(st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=5))
def test_delivery_ids_are_positive_bigints(ids: list[int]) -> None:
    try:
        checked = check_ids(ids)
    except InvalidInput as exc:
        one_line(exc)
        return
    assert checked is None or all(0 < i <= MAX_ID for i in checked)


@FUZZ
@given(
    st.one_of(st.floats(), st.text(max_size=10)),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
)
def test_worker_numbers_are_finite_and_in_range(value: Any, high: float) -> None:
    try:
        got = finite_in_range(value, where="--lease", low=0, high=abs(high), low_inclusive=False)
    except InvalidInput as exc:
        one_line(exc)
        return
    assert math.isfinite(got) and 0 < got <= abs(high)


@FUZZ
@given(st.one_of(stamp, st.text(max_size=40)))
def test_times_parse_or_refuse(text: str) -> None:
    try:
        when = parse_time(text, where="--since", require_zone=True)
    except InvalidInput as exc:
        one_line(exc)
        return
    assert when.tzinfo is not None


@pytest.mark.parametrize("text", ["\ufeffoperation_type", "operation_type\x00"])
def test_header_oddities_are_named(text: str) -> None:
    data = f"{text},duration_ms,recorded_at\nm,1,2026-01-01\n"
    with pytest.raises(InvalidInput) as info:
        list(csv_items(PATH, io.StringIO(data, newline=""), NOW))
    one_line(info.value)
