"""Silences (snoozes): matchers on operation type and alert type with an ``ALL`` wildcard.

Silenced alerts are recorded (held) and notify when the silence ends if they still fire: see
``release_held``. Expiring a silence releases at once.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from alert_delivery.alerting.lifecycle import release_held
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

DEFAULT_MINUTES = 60
MAX_DURATION = timedelta(days=90)


@dataclass(frozen=True)
class Silence:
    silence_id: int
    operation_type: str
    alert_type: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    expired_at: datetime | None
    active: bool
    holding: int


def _matcher(value: str | None, field: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput("must not be empty (use ALL to match everything)", where=field)
    if len(text) > 200:
        raise InvalidInput("is longer than 200 characters", where=field)
    return "ALL" if text.upper() == "ALL" else text


def silence_window(
    *,
    minutes: float | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """Start and end from either a duration or explicit times (default: 60 minutes from now)."""
    now = now or datetime.now(UTC)
    if minutes is not None and (start is not None or end is not None):
        raise InvalidInput("give either minutes or start/end, not both", where="minutes")
    if minutes is not None:
        if not minutes > 0:
            raise InvalidInput(f"must be positive, got {minutes}", where="minutes")
        start, end = now, now + timedelta(minutes=minutes)
    start = start or now
    end = end or start + timedelta(minutes=DEFAULT_MINUTES)
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise InvalidInput("needs a time zone (e.g. 2026-01-01T10:00Z)", where=name)
    if end <= start:
        raise InvalidInput(f"{end.isoformat()} is not after start {start.isoformat()}", where="end")
    if end <= now:
        raise InvalidInput(f"{end.isoformat()} is already in the past", where="end")
    if end - start > MAX_DURATION:
        raise InvalidInput("a silence may last at most 90 days", where="end")
    return start, end


def add_silence(
    conn: psycopg.Connection,
    *,
    operation_type: str,
    alert_type: str,
    reason: str,
    creator: str = "unknown",
    minutes: float | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Create a silence; returns its id. Malformed input raises ``InvalidInput`` naming a field."""
    op = _matcher(operation_type, "operation")
    kind = _matcher(alert_type, "alert_type")
    if not (reason or "").strip():
        raise InvalidInput("must not be empty", where="reason")
    starts_at, ends_at = silence_window(minutes=minutes, start=start, end=end)
    row = conn.execute(
        query("alerting", "insert_silence"),
        {
            "operation_type": op,
            "alert_type": kind,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "reason": reason.strip(),
            "created_by": (creator or "unknown").strip() or "unknown",
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def list_silences(conn: psycopg.Connection, *, include_ended: bool = False) -> list[Silence]:
    rows = conn.execute(query("alerting", "list_silences"), {"all": include_ended}).fetchall()
    return [Silence(*row) for row in rows]


def expire_silence(conn: psycopg.Connection, silence_id: int) -> int:
    """End a silence now; returns how many held alerts were released (and notified)."""
    row = conn.execute(query("alerting", "expire_silence"), {"silence_id": silence_id}).fetchone()
    if row is None:
        exists = conn.execute(
            query("alerting", "silence_exists"), {"silence_id": silence_id}
        ).fetchone()
        if exists is None:
            raise InvalidInput(f"no silence {silence_id}", where="silence_id")
        raise InvalidInput(f"silence {silence_id} is already expired", where="silence_id")
    return release_held(conn)
