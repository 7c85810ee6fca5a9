"""One escalation run: stop what no longer applies, open what is overdue, send what is due."""

from dataclasses import dataclass

import psycopg

from alert_delivery.alerting.sqlerrors import user_errors
from alert_delivery.db import query
from alert_delivery.delivery.retry import DEFAULT_SCHEDULE_S
from alert_delivery.errors import InvalidInput

MAX_LEVEL = 5


@dataclass(frozen=True)
class EscalationPolicy:
    """How often and how many times an escalation is sent, and what counts as stuck."""

    interval_s: int = 600
    """Between two levels of one escalation."""
    max_level: int = MAX_LEVEL
    """Levels sent before the escalation stops by itself (at most 5)."""
    stale_after_s: int = 1800
    """A delivery still pending this long after it was queued escalates."""
    dead_after_attempts: int = len(DEFAULT_SCHEDULE_S)
    """Failed attempts after which the next failure dead-letters (webhooks without their own
    retry schedule); the delivery engine's default schedule, so both agree."""

    def __post_init__(self) -> None:
        for field, value, low in (
            ("interval_s", self.interval_s, 1),
            ("stale_after_s", self.stale_after_s, 1),
            ("dead_after_attempts", self.dead_after_attempts, 1),
        ):
            if value < low:
                raise InvalidInput(f"must be >= {low}, got {value}", where=field)
        if not 1 <= self.max_level <= MAX_LEVEL:
            raise InvalidInput(
                f"must be between 1 and {MAX_LEVEL}, got {self.max_level}", where="max_level"
            )


@dataclass(frozen=True)
class EscalationAction:
    """What a run did to one escalation: ``sent`` (a level, ``queued`` rows) or ``stopped: ...``."""

    escalation_id: int
    alert_id: int
    delivery_id: int | None
    reason: str
    action: str
    level: int
    queued: int

    @property
    def sent(self) -> bool:
        return self.action.startswith("sent")


def run_escalations(
    conn: psycopg.Connection, policy: EscalationPolicy | None = None
) -> list[EscalationAction]:
    """Run once in the caller's transaction; safe to repeat and to run concurrently.

    A level already sent is not sent again before ``interval_s`` has passed, so two runs in the
    same minute (or a run after a restart) never double-send.
    """
    p = policy or EscalationPolicy()
    params = {
        "interval_s": p.interval_s,
        "max_level": p.max_level,
        "stale_after_s": p.stale_after_s,
        "dead_after_attempts": p.dead_after_attempts,
    }
    with user_errors("escalation"):
        rows = conn.execute(query("escalation", "run_escalations"), params).fetchall()
    return [EscalationAction(*row) for row in rows]
