"""Async queue access: claim, breaker/bucket permits, outcomes (sql/queries/delivery.sql)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from alert_delivery.db.queries import query


@dataclass
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


@dataclass
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
            "limit": limit,
            "worker_id": worker_id,
            "lease_s": lease_s,
            "min_age_s": min_age_s,
            "cooldown_s": cooldown_s,
        },
    )
    rows = await cur.fetchall()
    claimed = [Claimed(*row) for row in rows]
    for row in claimed:
        if isinstance(row.payload, str):
            row.payload = json.loads(row.payload)
    return claimed


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
    """Write every outcome, its log row and the health counters in one statement."""
    if not outcomes:
        return 0
    h_ids = sorted(health)
    params: dict[str, Any] = {
        "ids": [o.delivery_id for o in outcomes],
        "statuses": [o.status for o in outcomes],
        "delays": [o.delay_s for o in outcomes],
        "http": [o.http_status for o in outcomes],
        "errors": [o.error for o in outcomes],
        "latencies": [o.latency_ms for o in outcomes],
        "events": [o.log_event for o in outcomes],
        "counted": [o.counted for o in outcomes],
        "worker_id": worker_id,
        "run_id": run_id,
        "threshold": breaker_threshold,
        "h_ids": h_ids,
        "h_ok": [health[i].ok for i in h_ids],
        "h_failed": [health[i].failed for i in h_ids],
        "h_reset": [health[i].reset for i in h_ids],
        "h_trailing": [health[i].trailing for i in h_ids],
        "h_lat_n": [len(health[i].latencies) for i in h_ids],
        "h_lat_sum": [sum(health[i].latencies) for i in h_ids],
        "h_lat_p95": [_p95(health[i].latencies) for i in h_ids],
        "h_error": [health[i].error for i in h_ids],
    }
    cur = await conn.execute(query("delivery", "record"), params)
    return len(await cur.fetchall())


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
