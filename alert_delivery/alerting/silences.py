"""Silences (snoozes): label matchers (Alertmanager's ``=``, ``!=``, ``=~``, ``!~``).

Silenced alerts are recorded (held) and notify when the silence ends if they still fire: see
``release_held``. Expiring a silence releases at once. ``--operation`` / ``--alert-type`` (with
``ALL``) remain as shorthands for equality matchers.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from alert_delivery.alerting import matchers as m
from alert_delivery.alerting.lifecycle import release_held
from alert_delivery.alerting.matchers import Matcher
from alert_delivery.alerting.routing import check_in_database
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

DEFAULT_MINUTES = 60
MAX_DURATION = timedelta(days=90)


@dataclass(frozen=True)
class Silence:
    silence_id: int
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    expired_at: datetime | None
    active: bool
    holding: int


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
        if not 0 < minutes <= MAX_DURATION.total_seconds() / 60:
            raise InvalidInput(
                f"must be more than 0 and at most {int(MAX_DURATION.total_seconds() // 60)}"
                f" (90 days), got {minutes}",
                where="minutes",
            )
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
    match: Sequence[str] = (),
    operation_type: str | None = None,
    alert_type: str | None = None,
    reason: str,
    creator: str = "unknown",
    minutes: float | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Create a silence; returns its id. Malformed input raises ``InvalidInput`` naming a field.

    A silence needs at least one matcher: ``operation_type=ALL, alert_type=ALL`` (the old way of
    silencing everything) is still accepted and silences every alert.
    """
    selected = [
        *m.parse_all(match),
        *m.shorthand(operation=operation_type, alert_type=alert_type),
    ]
    everything = (operation_type or "").strip().upper() == "ALL" and (
        alert_type or ""
    ).strip().upper() == "ALL"
    if not selected and not everything:
        raise InvalidInput(
            "a silence needs at least one matcher (--match name=value, or --operation /"
            " --alert-type; ALL for both silences everything)",
            where="match",
        )
    check_in_database(conn, selected, "match")
    if not (reason or "").strip():
        raise InvalidInput("must not be empty", where="reason")
    if len(reason) > 2000:
        raise InvalidInput("is longer than 2000 characters", where="reason")
    starts_at, ends_at = silence_window(minutes=minutes, start=start, end=end)
    op = next((x.value for x in selected if x.name == "operation_type" and x.op == "="), "ALL")
    kind = next((x.value for x in selected if x.name == "alert_type" and x.op == "="), "ALL")
    row = conn.execute(
        query("alerting", "insert_silence"),
        {
            # Kept filled for the v_silences_audit view; matchers decide.
            "operation_type": op[:200],
            "alert_type": kind[:200],
            "matchers": json.dumps(m.to_json(selected)),
            "starts_at": starts_at,
            "ends_at": ends_at,
            "reason": reason.strip(),
            "created_by": (creator or "unknown").strip()[:200] or "unknown",
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def list_silences(conn: psycopg.Connection, *, include_ended: bool = False) -> list[Silence]:
    rows = conn.execute(query("alerting", "list_silences"), {"all": include_ended}).fetchall()
    return [Silence(row[0], m.from_json(row[1], where="matchers"), *row[2:]) for row in rows]


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
