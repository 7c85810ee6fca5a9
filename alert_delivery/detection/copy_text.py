"""Rows as lines of COPY's text format, with a fast path for rows that pass every check.

Parsing, not the database, bounds a million-row load, so the common case (a valid row) is handled
in one function without building objects; anything unusual returns ``None`` and the caller asks
:func:`alert_delivery.detection.rows.build_row` for the exact reason.
"""

import json
import re
from datetime import UTC, datetime
from typing import Any

from alert_delivery.detection.rows import EARLIEST, MetricRow

_INF = float("inf")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _clean(op: str, status: str, attrs: str) -> tuple[str, str, str] | None:
    raw = op + status + attrs
    if "\x00" in raw or (not raw.isascii() and not _encodable(raw)):
        return None
    if "\\" in raw or "\t" in raw or "\n" in raw or "\r" in raw:
        return op.translate(_ESCAPES), status.translate(_ESCAPES), attrs.translate(_ESCAPES)
    return op, status, attrs


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# After "YYYY-MM-DDTHH:MM:SS", the spellings PostgreSQL reads exactly as Python does; others (a
# comma before the fraction, more than 6 digits, an offset with seconds) are re-written from the
# parsed value. The common tails skip the pattern: this runs once per row.
_COMMON_TAILS = frozenset({"", "Z", "+00:00", "-00:00"})
_PLAIN_TAIL = re.compile(r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?")


def _attributes_text(attrs: Any) -> str | None:
    if attrs is None or attrs == "":
        return "{}"
    if isinstance(attrs, str):
        if "\\u" in attrs or "NaN" in attrs or "Infinity" in attrs:
            return None  # let the slow path judge escapes and non-JSON constants
        try:
            value = json.loads(attrs)
        except ValueError:
            return None
        return attrs if isinstance(value, dict) else None
    if isinstance(attrs, dict):
        text = json.dumps(attrs)
        return None if "\\u" in text or "NaN" in text or "Infinity" in text else text
    return None


def copy_line(
    op: Any, duration: Any, recorded_at: Any, status: Any, attrs: Any, limit: datetime
) -> str | None:
    """The COPY line for a valid row; ``None`` when any check fails (or is unusual)."""
    if not isinstance(op, str) or isinstance(duration, bool):
        return None
    op = op.strip()
    if not op:
        return None
    try:
        value = float(duration)
        stamp = datetime.fromisoformat(recorded_at)
    except (TypeError, ValueError, OverflowError):
        return None
    if not 0.0 <= value < _INF:
        return None
    # The text as written when PostgreSQL reads it the same way (repr() costs a third of a row);
    # underscores and values near underflow take the safe spelling.
    if isinstance(duration, str) and duration.isascii() and "_" not in duration and value > 1e-300:
        duration_text = duration.strip()
    else:
        duration_text = repr(value)
    # The common "YYYY-MM-DD?HH:MM..." spelling goes through as written (PostgreSQL reads it the
    # same way); re-formatting every timestamp would cost more than the rest of the row.
    canonical = (
        len(recorded_at) >= 19
        and recorded_at[4] == "-"
        and recorded_at[10] in "T "
        and recorded_at[13] == ":"
        and recorded_at[5] != "W"  # an ISO week date, which PostgreSQL does not read
        and (
            recorded_at[19:] in _COMMON_TAILS or _PLAIN_TAIL.fullmatch(recorded_at, 19) is not None
        )
    )
    stamp_text = recorded_at if canonical else ""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
        stamp_text = stamp_text and stamp_text + "+00:00"
    if stamp > limit or stamp < EARLIEST:
        return None
    if status is None or status == "":
        status = "success"
    elif isinstance(status, str):
        status = status.strip().lower() or "success"
    else:
        return None
    text = _attributes_text(attrs)
    if text is None:
        return None
    cleaned = _clean(op, status, text)
    if cleaned is None:
        return None
    op, status, text = cleaned
    stamp_text = stamp_text or stamp.astimezone(UTC).isoformat()
    return f"{op}\t{duration_text}\t{status}\t{stamp_text}\t{text}\n"


def row_line(row: MetricRow) -> str:
    """The COPY line of an already-validated row."""
    attrs = json.dumps(row.attributes) if row.attributes else "{}"
    cleaned = _clean(row.operation_type, row.status, attrs)
    op, status, text = cleaned if cleaned else (row.operation_type, row.status, attrs)
    return f"{op}\t{row.duration_ms!r}\t{status}\t{row.recorded_at.isoformat()}\t{text}\n"
