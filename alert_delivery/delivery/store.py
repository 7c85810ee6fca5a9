"""Async queue access: claim and permits (sql/queries/delivery.sql), outcomes in small groups,
the shared breaker and counters (sql/queries/delivery_outcomes.sql)."""

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from alert_delivery.db.queries import query, raw_query
from alert_delivery.delivery.body import DICT_KINDS, render_new

_decode = json.JSONDecoder().decode
RENDER_SLICE = 64
"""Rows rendered between two yields to the event loop (the lanes read responses meanwhile)."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """One leased queue row, complete as the claim built it (secrets still encrypted): a new
    row's body is rendered in the claim, so nothing is filled in later."""

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
    first claim or rendered in this one (PagerDuty's routing key is spliced in at send time), or
    a legacy row's payload as PostgreSQL prints it for kinds that send it unchanged (then
    ``payload`` is empty)."""
    alert_ids: list[int] | None = None
    """Set on new rows only (payload '{}', no body yet): the alerts whose messages it renders."""
    messages: list[Any] | None = None
    """A new row's alert messages (``alert_delivery.alert_messages``) it was rendered from; None
    otherwise. (The claim sends the messages of all its new rows on its first row.)"""
    probe: bool = False
    """The shared breaker is half-open and this claim holds its one probe (the granted row)."""
    breaker: str = "closed"
    """The shared breaker state after this claim's permit, and the shared failure count."""
    failures: int = 0
    paused: str | None = None
    """Why the engine paused this (inactive) webhook: its rows wait instead of dying."""
    error: str | None = None
    """Why the row cannot be sent at all (it is dead-lettered), e.g. ``cannot render: ...``."""
    rendered: bool = False
    """The body was rendered at this claim: it is stored with the row's first outcome."""


# Column positions in the claim's result (sql/queries/delivery.sql), in Claimed's field order.
_PAYLOAD, _KIND, _CONFIG, _BODY, _ALERT_IDS, _MESSAGES = 5, 7, 12, 18, 19, 20
_PER_WEBHOOK = ((8, 18), (21, 25))
"""Column ranges only the webhook's first row in a claim carries (name ... wait_s, probe ...
paused); the claim's other rows of that webhook get them from it."""


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
    body: str | None = None
    """A body rendered at this claim, stored with this (the row's first) outcome."""


@dataclass
class HealthDelta:
    ok: int = 0
    failed: int = 0
    reset: bool = False
    trailing: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str | None = None
    deferred: int = 0
    throttled: int = 0
    throttle_s: float | None = None


@dataclass(frozen=True, slots=True)
class SharedBreaker:
    """A webhook's breaker in webhook_health as a group's record left it."""

    webhook_id: int
    state: str
    failures: int
    open_for_s: float


async def claim(
    conn: psycopg.AsyncConnection[Any],
    *,
    limit: int,
    worker_id: str,
    lease_s: float,
    min_age_s: float = 0.0,
    cooldown_s: float = 60.0,
    only: int | None = None,
    runbook_base: str = "",
) -> list[Claimed]:
    """Lease up to ``limit`` due rows, each complete: its webhook's permit from the same
    statement, and a new row's body rendered (``runbook_base`` links runbooks), which is stored
    with its first outcome. ``only`` restricts the claim to one webhook (looking for the one that
    makes claims fail)."""
    sql, names = raw_query("delivery", "claim")
    params = {
        "limit": int(limit),
        "worker_id": worker_id,
        "only": only,
        # Always floats: the prepared statement is kept per parameter types.
        "lease_s": float(lease_s),
        "min_age_s": float(min_age_s),
        "cooldown_s": float(cooldown_s),
    }
    cur = psycopg.AsyncRawCursor(conn)
    await cur.execute(sql, [params[n] for n in names], prepare=True)
    rows = await cur.fetchall()
    if not rows:
        return []
    by_id: dict[int, Any] = {m["id"]: m for m in rows[0][_MESSAGES] or ()}
    at = datetime.now(UTC)
    first: dict[int, list[Any]] = {}
    claimed: list[Claimed] = []
    for n, row in enumerate(rows, 1):
        v = list(row)
        f = first.get(v[3])
        if f is None:
            # The webhook's first row in this claim carries its columns; rows come in
            # delivery_id order, so it is the first one seen.
            first[v[3]] = v
            if v[_CONFIG] is None:
                v[_CONFIG] = {}
        else:
            for lo, hi in _PER_WEBHOOK:
                v[lo:hi] = f[lo:hi]
        kind, payload, body = v[_KIND], v[_PAYLOAD], v[_BODY]
        if payload is None:
            # Email and inbox read the stored body's fields; the other kinds send its text.
            v[_PAYLOAD] = _decode(body) if body is not None and kind in DICT_KINDS else {}
        elif isinstance(payload, str):
            v[_PAYLOAD] = json.loads(payload)
        error, rendered = None, False
        if v[_ALERT_IDS] is None:
            v[_MESSAGES] = None
        else:
            # Alerts that no longer exist are left out; with none left the row cannot render.
            messages = v[_MESSAGES] = [by_id[i] for i in v[_ALERT_IDS] if i in by_id]
            body, value, error = render_new(kind, v[4], messages, at, runbook_base)
            if body is not None:
                v[_BODY], rendered = body, True
                if kind in DICT_KINDS:
                    v[_PAYLOAD] = value
            if not n % RENDER_SLICE:
                await asyncio.sleep(0)  # let the lanes read responses between slices
        v += (error, rendered)
        claimed.append(Claimed(*v))
    return claimed


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
    await record(conn, [], {}, worker_id=worker_id, run_id=None, breaker_threshold=0, plan=True)
    await record_health(
        conn, {}, breaker_threshold=0, cooldown_s=cooldown_s, worker_id=worker_id, plan=True
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
    cooldown_s: float = 60.0,
    plan: bool = False,
) -> tuple[int, list[SharedBreaker]]:
    """Write a group's outcomes with their log rows (one durable statement), then the health
    counters; returns how many rows were written and the breakers as they now are."""
    if not outcomes and not plan:
        return 0, []
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
    with_body = [o for o in outcomes if o.body is not None]
    cur = await conn.execute(
        query("delivery_outcomes", "record"),
        {
            "outcomes": _json(rows),
            "body_ids": [o.delivery_id for o in with_body],
            "bodies": [o.body for o in with_body],
            "worker_id": worker_id,
            "run_id": run_id,
        },
        prepare=True,
    )
    row = await cur.fetchone()
    written = int(row[0]) if row else 0
    shared: list[SharedBreaker] = []
    if health:
        shared = await record_health(
            conn,
            health,
            breaker_threshold=breaker_threshold,
            cooldown_s=cooldown_s,
            worker_id=worker_id,
        )
    return written, shared


async def record_health(
    conn: psycopg.AsyncConnection[Any],
    health: dict[int, HealthDelta],
    *,
    breaker_threshold: int,
    cooldown_s: float,
    worker_id: str,
    plan: bool = False,
) -> list[SharedBreaker]:
    """Breaker state, throttle and counters per webhook; the rows stay locked only while this
    runs. Returns each webhook's breaker as it now is (other processes' failures included)."""
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
            "deferred": d.deferred,
            "throttled": d.throttled,
            "throttle_s": d.throttle_s,
        }
        # Sorted: health rows are locked in webhook_id order everywhere.
        for webhook_id, d in sorted(health.items())
    ]
    if not rows and not plan:
        return []
    cur = await conn.execute(
        query("delivery_outcomes", "record_health"),
        {
            "health": _json(rows),
            "threshold": breaker_threshold,
            "cooldown_s": float(cooldown_s),
            "worker_id": worker_id,
        },
        prepare=True,
    )
    return [SharedBreaker(int(w), str(s), int(f), float(o)) for w, s, f, o in await cur.fetchall()]


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
        query("delivery_outcomes", "endpoint_gone"),
        {"webhook_id": webhook_id, "reason": reason, "worker_id": worker_id, "run_id": run_id},
    )


async def pause_webhook(
    conn: psycopg.AsyncConnection[Any],
    webhook_id: int,
    *,
    reason: str,
    worker_id: str,
    run_id: str | None,
) -> None:
    await conn.execute(
        query("delivery_outcomes", "pause_webhook"),
        {"webhook_id": webhook_id, "reason": reason, "worker_id": worker_id, "run_id": run_id},
    )


async def due_webhooks(conn: psycopg.AsyncConnection[Any], *, limit: int = 1000) -> list[int]:
    cur = await conn.execute(query("delivery_outcomes", "due_webhooks"), {"limit": limit})
    return [int(r[0]) for r in await cur.fetchall()]


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
