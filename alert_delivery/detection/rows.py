"""One metric row and its validation: every reason a row is refused, as one short sentence."""

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_FUTURE = timedelta(minutes=5)
# Python reads timestamps PostgreSQL cannot store (year 1 at +14:00 is 1 BC in UTC); no metric of
# this tool predates the Unix epoch.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
REQUIRED = ("operation_type", "duration_ms", "recorded_at")
OPTIONAL = ("status", "attributes")
COLUMNS = REQUIRED + OPTIONAL


@dataclass(frozen=True)
class MetricRow:
    operation_type: str
    duration_ms: float
    recorded_at: datetime
    status: str = "success"
    attributes: dict[str, Any] = field(default_factory=dict)


class RowError(ValueError):
    """A row cannot be loaded; ``str()`` is the reason shown in the report."""


def parse_duration(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise RowError(f"duration_ms is not a number: {value!r}")
    try:
        # An integer beyond float range (JSON allows any) overflows instead of becoming inf.
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except OverflowError:
        raise RowError("duration_ms is too large") from None
    except ValueError:
        raise RowError(f"duration_ms is not a number: {_short(value)}") from None
    if math.isnan(number):
        raise RowError("duration_ms is NaN")
    if math.isinf(number):
        raise RowError("duration_ms is infinite")
    if number < 0:
        raise RowError(f"duration_ms is negative: {number:g}")
    return number


def parse_timestamp(value: Any, now: datetime) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"recorded_at is not a timestamp: {_short(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RowError(f"recorded_at is not an ISO 8601 timestamp: {_short(value)}") from None
    # A timestamp without an offset is taken as UTC, the only zone the pipeline speaks.
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > now + MAX_FUTURE:
        raise RowError(f"recorded_at is more than 5 minutes in the future: {value.strip()}")
    if parsed < EARLIEST:
        raise RowError(f"recorded_at is before 1970: {_short(value.strip())}")
    # In UTC: PostgreSQL refuses some offsets Python accepts (fractions of a second).
    return parsed.astimezone(UTC)


def _no_constants(name: str) -> None:
    # Python's json accepts NaN and Infinity; PostgreSQL's jsonb does not.
    raise ValueError(name)


def parse_attributes(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_no_constants)
        except ValueError:
            raise RowError("attributes is not valid JSON") from None
    if not isinstance(value, dict):
        raise RowError("attributes is not a JSON object")
    text = json.dumps(value, ensure_ascii=False)
    # jsonb refuses NUL and lone surrogates that Python's json lets through.
    if "\\u0000" in text or not _encodable(text):
        raise RowError("attributes holds a character PostgreSQL cannot store")
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_status(value: Any) -> str:
    if value is None or value == "":
        return "success"
    if not isinstance(value, str):
        raise RowError(f"status is not text: {_short(value)}")
    return value.strip().lower() or "success"


def build_row(fields: dict[str, Any], now: datetime) -> MetricRow:
    """Validate one row given as column -> raw value (CSV text or JSON values)."""
    op = fields.get("operation_type")
    if not isinstance(op, str) or not op.strip():
        raise RowError("operation_type is empty")
    for name in ("operation_type", "status", "attributes"):
        text = str(fields.get(name) or "")
        if "\x00" in text:
            raise RowError(f"{name} contains a NUL character")
        # JSON's "\ud800" decodes to a lone surrogate, which no UTF-8 database stores.
        if not text.isascii() and not _encodable(text):
            raise RowError(f"{name} holds a character PostgreSQL cannot store")
    return MetricRow(
        operation_type=op.strip(),
        duration_ms=parse_duration(fields.get("duration_ms")),
        recorded_at=parse_timestamp(fields.get("recorded_at"), now),
        status=parse_status(fields.get("status")),
        attributes=parse_attributes(fields.get("attributes")),
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
