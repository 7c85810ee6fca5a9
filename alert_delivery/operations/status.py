"""What `alert-delivery status` reads from the database, and how it prints it."""

from dataclasses import dataclass

import psycopg

from alert_delivery.db import query


@dataclass(frozen=True)
class QueueDepth:
    status: str
    depth: int
    oldest_age_s: float
    due_now: int
    expired_leases: int


@dataclass(frozen=True)
class OldestPending:
    delivery_id: int
    webhook: str
    event: str
    attempts: int
    age_s: float
    due_in_s: float
    last_error: str | None


@dataclass(frozen=True)
class DegradedWebhook:
    name: str
    kind: str
    active: bool
    health_status: str
    breaker_state: str
    consecutive_failures: int
    dead_letters: int
    pending: int
    disabled_reason: str | None


@dataclass(frozen=True)
class LiveWorker:
    worker_id: str
    hostname: str
    pid: int
    heartbeat_age_s: float
    delivered: int
    failed: int


@dataclass(frozen=True)
class SystemStatus:
    queue: list[QueueDepth]
    oldest_pending: OldestPending | None
    degraded: list[DegradedWebhook]
    workers: list[LiveWorker]


def read_status(conn: psycopg.Connection) -> SystemStatus:
    queue = [QueueDepth(*row) for row in conn.execute(query("operations", "status_queue_depth"))]
    oldest = conn.execute(query("operations", "status_oldest_pending")).fetchone()
    degraded = [
        DegradedWebhook(*row)
        for row in conn.execute(query("operations", "status_degraded_webhooks"))
    ]
    workers = [LiveWorker(*row) for row in conn.execute(query("operations", "status_live_workers"))]
    return SystemStatus(
        queue=queue,
        oldest_pending=OldestPending(*oldest) if oldest else None,
        degraded=degraded,
        workers=workers,
    )


def human_duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 10m``, ``3d 4h``: coarse enough to read at a glance."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _one_line(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def format_status(status: SystemStatus) -> list[str]:
    lines = ["Queue depth:"]
    for q in status.queue:
        extra = ""
        if q.status in ("pending", "in_flight"):
            extra = f"  due now {q.due_now}"
            if q.status == "in_flight":
                extra += f"  expired leases {q.expired_leases}"
        lines.append(f"  {q.status:<10} {q.depth:>8}{extra}")
    oldest = status.oldest_pending
    if oldest is None:
        lines.append("Oldest pending: none")
    else:
        due = f"due in {human_duration(oldest.due_in_s)}" if oldest.due_in_s > 0 else "due now"
        lines.append(
            f"Oldest pending: delivery {oldest.delivery_id} to {oldest.webhook} ({oldest.event}),"
            f" age {human_duration(oldest.age_s)}, attempts {oldest.attempts}, {due}"
        )
        if oldest.last_error:
            lines.append(f"  last error: {_one_line(oldest.last_error)}")
    lines.append(f"Degraded webhooks: {len(status.degraded) or 'none'}")
    for w in status.degraded:
        state = "active" if w.active else f"disabled ({_one_line(w.disabled_reason or '-', 40)})"
        lines.append(
            f"  {w.name} [{w.kind}] {state}, health {w.health_status}, breaker {w.breaker_state},"
            f" {w.consecutive_failures} consecutive failures, {w.pending} pending,"
            f" {w.dead_letters} dead"
        )
    lines.append(f"Live workers (heartbeat within 30s): {len(status.workers)}")
    for k in status.workers:
        lines.append(
            f"  {k.worker_id} on {k.hostname} pid {k.pid}, heartbeat"
            f" {human_duration(k.heartbeat_age_s)} ago, delivered {k.delivered}, failed {k.failed}"
        )
    return lines
