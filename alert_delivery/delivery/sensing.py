"""What the Dagster sensor should launch: delivery runs for due rows, decided from the queue.

New rows (past the cursor) get a run keyed by their id range. Older due rows that no run has
claimed (ids committed out of order, due retries, expired leases) get a run keyed by their range
and the minute, so a stuck range is retried once a minute, not every tick. While a worker's
heartbeat is fresh, only rows pending longer than the grace period count: the worker is faster.
"""

import time
from dataclasses import dataclass

from alert_delivery.db.connection import connect
from alert_delivery.db.queries import query

HEARTBEAT_STALE_S = 30.0


@dataclass(frozen=True)
class RunPlan:
    run_key: str
    first_id: int
    last_id: int
    rows: int
    min_age_s: float


def plan_delivery_runs(
    db_url: str, *, cursor: int, grace_s: float = 10.0, now: float | None = None
) -> tuple[list[RunPlan], int]:
    """The runs to launch and the new cursor (the highest delivery id seen)."""
    with connect(db_url, autocommit=True) as conn:
        live = conn.execute(query("delivery", "live_workers"), {"stale_s": HEARTBEAT_STALE_S})
        live_row = live.fetchone()
        min_age = grace_s if live_row and live_row[0] else 0.0
        summary = conn.execute(
            query("delivery", "pending_summary"), {"cursor": cursor, "min_age_s": min_age}
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
