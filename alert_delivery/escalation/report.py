"""Reading escalation state for the report asset and operators."""

from dataclasses import dataclass
from datetime import datetime

import psycopg

from alert_delivery.db import query


@dataclass(frozen=True)
class EscalationRow:
    escalation_id: int
    state: str
    alert_id: int | None
    severity: str | None
    operation_type: str | None
    alert_type: str | None
    title: str | None
    alert_status: str | None
    reason: str
    delivery_id: int | None
    level: int
    created_at: datetime
    last_sent_at: datetime | None
    next_at: datetime
    stopped_at: datetime | None
    stop_reason: str | None


@dataclass(frozen=True)
class EscalationSummary:
    open: int
    stopped: int
    sent: int
    """Levels sent over all escalations."""
    rows: list[EscalationRow]


def list_escalations(conn: psycopg.Connection, *, limit: int = 200) -> EscalationSummary:
    """Open escalations (next due first), then the most recently stopped, ``limit`` rows."""
    counts = conn.execute(query("escalation", "count_escalations")).fetchone()
    assert counts is not None
    rows = conn.execute(query("escalation", "list_escalations"), {"limit": limit}).fetchall()
    return EscalationSummary(
        open=int(counts[0]),
        stopped=int(counts[1]),
        sent=int(counts[2]),
        rows=[EscalationRow(*row) for row in rows],
    )
