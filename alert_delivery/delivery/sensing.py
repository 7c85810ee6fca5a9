"""What the Dagster sensors should launch: delivery runs for due rows, decided from the queue.

The delivery sensor handles first attempts. New rows (past the cursor) get a run keyed by their
id range; older due first attempts that no run has claimed (ids committed out of order, a run
that failed) get a run keyed by their range and the minute, so a stuck range is retried once a
minute, not every tick. Retries and expired leases are the retry sensor's (``plan_retry_run``).

While a worker's heartbeat is fresh, rows are the worker's: it claims them in milliseconds and
re-polls every second, so a Dagster run would start (about 2 s later) to find nothing. Only rows
due longer than the grace period count then: evidence that the workers are behind or stuck.
"""

import time
from dataclasses import dataclass

from alert_delivery.db.connection import connect
from alert_delivery.db.queries import query
from alert_delivery.operations.due import HEARTBEAT_STALE_S, live_worker, retries_due

__all__ = ["HEARTBEAT_STALE_S", "WORKER_GRACE_S", "RunPlan", "plan_delivery_runs", "plan_retry_run"]

WORKER_GRACE_S = 30.0
"""With a live worker, rows due for less than this are left to it."""


@dataclass(frozen=True)
class RunPlan:
    run_key: str
    first_id: int
    last_id: int
    rows: int
    min_age_s: float


def plan_delivery_runs(
    db_url: str, *, cursor: int, grace_s: float = WORKER_GRACE_S, now: float | None = None
) -> tuple[list[RunPlan], int]:
    """The runs to launch and the new cursor (the highest delivery id seen)."""
    with connect(db_url, autocommit=True) as conn:
        min_age = grace_s if live_worker(conn) else 0.0
        summary = conn.execute(
            query("due", "first_deliveries_due"), {"cursor": cursor, "min_age_s": min_age}
        ).fetchone()
    assert summary is not None
    new_rows, new_first, new_last, old_rows, old_first, old_last = summary
    plans: list[RunPlan] = []
    if new_rows:
        plans.append(
            RunPlan(f"deliver:{new_first}-{new_last}", new_first, new_last, new_rows, min_age)
        )
        cursor = max(cursor, int(new_last))
    if old_rows:
        minute = int((time.time() if now is None else now) // 60)
        plans.append(
            RunPlan(
                f"deliver:{old_first}-{old_last}:m{minute}", old_first, old_last, old_rows, min_age
            )
        )
    return plans, cursor


def plan_retry_run(
    db_url: str, *, now: float, grace_s: float = WORKER_GRACE_S, every_s: int = 300
) -> RunPlan | None:
    """One retry-sweep run when retries or expired leases are due, keyed by the ``every_s``
    slot of ``now`` (so one run per slot at most); ``None`` when nothing is due."""
    with connect(db_url, autocommit=True) as conn:
        min_age = grace_s if live_worker(conn) else 0.0
        due = retries_due(conn, min_age)
    if not due.rows or due.first_id is None or due.last_id is None:
        return None
    slot = int(now // every_s)
    return RunPlan(
        f"retry:{due.first_id}-{due.last_id}:s{slot}", due.first_id, due.last_id, due.rows, min_age
    )
