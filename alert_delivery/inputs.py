"""Parsing of values users type (CLI flags, Dagster run config), with errors naming the field."""

from datetime import UTC, datetime

from alert_delivery.errors import InvalidInput


def parse_time(text: str, *, where: str, require_zone: bool = False) -> datetime:
    """An ISO 8601 time. Without an offset it means UTC (as every time this tool prints), unless
    ``require_zone`` — for selections where guessing the zone could replay the wrong hours."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"not an ISO 8601 time: {text!r}", where=where) from None
    if value.tzinfo is None:
        if require_zone:
            raise InvalidInput(f"needs a time zone, e.g. {text.strip()}+00:00", where=where)
        return value.replace(tzinfo=UTC)
    return value
