"""Async queue access: claim, breaker/bucket permits, outcomes (sql/queries/delivery.sql)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from alert_delivery.db.queries import query

DICT_KINDS = frozenset(("email", "inbox"))
"""Kinds the engine reads fields of (subject, text, recipients' title...) rather than sending."""
_decode = json.JSONDecoder().decode


@dataclass(slots=True)
class Claimed:
    """One leased queue row with what is needed to deliver it (secrets still encrypted)."""

    delivery_id: int
    message_id: str
    alert_id: int | None
    webhook_id: int
    event: str
    payload: dict[str, Any]
    attempts: int
    kind: str
    name: str
    url_token: str | None
    url_redacted: str
    secret_token: str | None
    config: dict[str, Any]
    rate_limit_per_s: float
    retry_schedule_s: list[int] | None
    active: bool
    granted: int = 1_000_000
    """How many rows of this webhook the breaker and bucket let through in this claim."""
    wait_s: float = 0.0
    """When the rows over ``granted`` should come back (next token, breaker half-open)."""
    body: str | None = None
    """The exact text signed and sent, with no decode and re-encode: the body stored at the row's
    first claim (PagerDuty's routing key is spliced in at send time), or a legacy row's payload
    as PostgreSQL prints it for kinds that send it unchanged (then ``payload`` is left empty)."""
    alert_ids: list[int] | None = None
    """Set on new rows only (payload '{}', no body yet): the alerts whose messages it renders."""
    messages: list[Any] | None = None
    """A new row's alert messages (``alert_delivery.alert_messages``), to render; None otherwise.
    (The claim sends the messages of all its new rows on its first row; they are shared out.)"""
    error: str | None = None
    """Why the row cannot be sent at all (it is dead-lettered), e.g. ``cannot render: ...``."""


@dataclass(slots=True)
class Outcome:
    """What to write for one row: the queue status and its log event."""

    delivery_id: int
    webhook_id: int
    status: str
    delay_s: float
    log_event: str
    counted: bool
    http_status: int | None = None
    error: str | None = None
    latency_ms: float | None = None


@dataclass
class HealthDelta:
    ok: int = 0
    failed: int = 0
    reset: bool = False
    trailing: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str | None = None


async def claim(
    conn: psycopg.AsyncConnection[Any],
    *,
    limit: int,
    worker_id: str,
    lease_s: float,
    min_age_s: float = 0.0,
    cooldown_s: float = 60.0,
) -> list[Claimed]:
    """Lease up to ``limit`` due rows; each carries its webhook's permit from the same statement."""
    cur = await conn.execute(
        query("delivery", "claim"),
        {
            "limit": int(limit),
            "worker_id": worker_id,
            # Always floats: the prepared statement is kept per parameter types.
            "lease_s": float(lease_s),
            "min_age_s": float(min_age_s),
            "cooldown_s": float(cooldown_s),
        },
        prepare=True,
    )
    rows = await cur.fetchall()
    claimed = [Claimed(*row) for row in rows]
    by_id: dict[int, Any] = {}
    if claimed and claimed[0].messages:
        by_id = {m["id"]: m for m in claimed[0].messages}
    first: dict[int, Claimed] = {}
    for row in claimed:
        if row.payload is None:
            # Email and inbox read the stored body's fields; the other kinds send its text.
            row.payload = (
                _decode(row.body) if row.body is not None and row.kind in DICT_KINDS else {}
            )
        elif isinstance(row.payload, str):
            row.payload = json.loads(row.payload)
        if row.alert_ids is None:
            row.messages = None
        else:
            # Alerts that no longer exist are left out; with none left the row cannot render.
            row.messages = [by_id[i] for i in row.alert_ids if i in by_id]
        f = first.get(row.webhook_id)
        if f is None:
            # The webhook's first row in this claim carries its columns; rows come in
            # delivery_id order, so it is the first one seen.
            first[row.webhook_id] = row
            if row.config is None:
                row.config = {}
            continue
        row.name, row.url_token, row.url_redacted = f.name, f.url_token, f.url_redacted
        row.secret_token, row.config = f.secret_token, f.config
        row.rate_limit_per_s, row.retry_schedule_s, row.active = (
            f.rate_limit_per_s,
            f.retry_schedule_s,
            f.active,
        )
        row.granted, row.wait_s = f.granted, f.wait_s
    return claimed


async def write_bodies(
    conn: psycopg.AsyncConnection[Any], ids: Sequence[int], bodies: Sequence[str]
) -> int:
    """Store the bodies rendered at a claim (one statement); returns how many rows took theirs."""
    cur = await conn.execute(
        query("delivery", "write_bodies"), {"ids": list(ids), "bodies": list(bodies)}, prepare=True
    )
    return max(cur.rowcount, 0)


async def stored_bodies(conn: psycopg.AsyncConnection[Any], ids: Sequence[int]) -> dict[int, str]:
    cur = await conn.execute(query("delivery", "stored_bodies"), {"ids": list(ids)})
    return {int(i): str(b) for i, b in await cur.fetchall() if b is not None}


async def prepare(
    claim_conn: psycopg.AsyncConnection[Any],
    conn: psycopg.AsyncConnection[Any],
    *,
    worker_id: str,
    lease_s: float,
    cooldown_s: float,
) -> None:
    """Plan the hot statements once, when a process starts: a claim of no rows and empty
    outcome batches. The first real claim otherwise paid about 9 ms of planning and catalog
    loading, which is the first alert's latency in a freshly started worker."""
    await claim(claim_conn, limit=0, worker_id=worker_id, lease_s=lease_s, cooldown_s=cooldown_s)
    await write_bodies(claim_conn, [], [])
    await conn.execute(
        query("delivery", "record"),
        {"outcomes": "[]", "worker_id": worker_id, "run_id": None},
        prepare=True,
    )
    await conn.execute(
        query("delivery", "record_health"), {"health": "[]", "threshold": 0}, prepare=True
    )


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def record(
    conn: psycopg.AsyncConnection[Any],
    outcomes: Sequence[Outcome],
    health: dict[int, HealthDelta],
    *,
    worker_id: str,
    run_id: str | None,
    breaker_threshold: int,
) -> int:
    """Write every outcome with its log row (one durable statement), then the health counters."""
    if not outcomes:
        return 0
    # Positional, in the order record's SQL reads them: encoding tuples costs half of what
    # objects with keys do, and this runs for every delivery.
    rows = [
        (
            o.delivery_id,
            o.status,
            o.delay_s,
            o.http_status,
            o.error,
            o.latency_ms,
            o.log_event,
            o.counted,
        )
        for o in outcomes
    ]
    cur = await conn.execute(
        query("delivery", "record"),
        {"outcomes": _json(rows), "worker_id": worker_id, "run_id": run_id},
        prepare=True,
    )
    row = await cur.fetchone()
    written = int(row[0]) if row else 0
    if health:
        await record_health(conn, health, breaker_threshold=breaker_threshold)
    return written


async def record_health(
    conn: psycopg.AsyncConnection[Any], health: dict[int, HealthDelta], *, breaker_threshold: int
) -> None:
    """Breaker state and counters per webhook; the rows stay locked only while this runs."""
    rows = [
        {
            "webhook_id": webhook_id,
            "ok": d.ok,
            "failed": d.failed,
            "reset": d.reset,
            "tail_failures": d.trailing,
            "lat_n": len(d.latencies),
            "lat_sum": sum(d.latencies),
            "lat_p95": _p95(d.latencies),
            "error": d.error,
        }
        # Sorted: health rows are locked in webhook_id order everywhere.
        for webhook_id, d in sorted(health.items())
    ]
    await conn.execute(
        query("delivery", "record_health"),
        {"health": _json(rows), "threshold": breaker_threshold},
        prepare=True,
    )


# allow_nan=False: PostgreSQL's JSON has no NaN, better a clear error here than there.
_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


async def endpoint_gone(
    conn: psycopg.AsyncConnection[Any],
    webhook_id: int,
    *,
    reason: str,
    worker_id: str,
    run_id: str | None,
) -> None:
    await conn.execute(
        query("delivery", "endpoint_gone"),
        {"webhook_id": webhook_id, "reason": reason, "worker_id": worker_id, "run_id": run_id},
    )


async def insert_inbox(
    conn: psycopg.AsyncConnection[Any], rows: Sequence[tuple[str, int | None, int, str, str, str]]
) -> None:
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    await conn.execute(
        query("delivery", "insert_inbox"),
        {
            "recipients": list(cols[0]),
            "alert_ids": list(cols[1]),
            "delivery_ids": list(cols[2]),
            "severities": list(cols[3]),
            "titles": list(cols[4]),
            "bodies": list(cols[5]),
        },
    )
