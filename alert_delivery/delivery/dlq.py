"""Dead letters: list them, and replay by id, by webhook or by time range."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from alert_delivery.db.connection import connect
from alert_delivery.db.queries import query
from alert_delivery.delivery.registry import webhook_id_by_name
from alert_delivery.errors import InvalidInput


@dataclass(frozen=True)
class DeadLetter:
    delivery_id: int
    webhook: str
    event: str
    attempts: int
    last_status: int | None
    last_error: str | None
    dead_at: datetime
    alert_id: int | None


@dataclass(frozen=True)
class Selection:
    """Which dead rows: any combination narrows; replay needs at least one criterion."""

    ids: Sequence[int] | None = None
    webhook: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def is_empty(self) -> bool:
        return not self.ids and not self.webhook and not self.since and not self.until


MAX_ID = 2**63 - 1  # bigint
SHOWN_IDS = 5
MAX_LISTED = 100_000


def check_ids(ids: Sequence[int] | None) -> list[int] | None:
    """Delivery ids as given, each a positive bigint; a one-line InvalidInput otherwise."""
    if not ids:
        return None
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 < i <= MAX_ID:
            shown = repr(i) if len(repr(i)) <= 24 else repr(i)[:21] + "..."
            raise InvalidInput(f"not a delivery id: {shown}", where="ids")
    return list(ids)


def _refuse_missing(conn: psycopg.Connection, ids: list[int]) -> None:
    missing = [int(r[0]) for r in conn.execute(query("dlq", "not_dead"), {"ids": ids})]
    if missing:
        shown = ", ".join(str(i) for i in missing[:SHOWN_IDS])
        more = f" and {len(missing) - SHOWN_IDS} more" if len(missing) > SHOWN_IDS else ""
        raise InvalidInput(f"no dead deliver{'y' if len(missing) == 1 else 'ies'} {shown}{more}")


def _params(conn: psycopg.Connection, sel: Selection) -> dict[str, object]:
    if sel.since and sel.until and sel.since >= sel.until:
        raise InvalidInput("--since must be before --until", where="--since")
    webhook_id = webhook_id_by_name(conn, sel.webhook) if sel.webhook else None
    return {
        "ids": check_ids(sel.ids),
        "webhook_id": webhook_id,
        "since": sel.since,
        "until": sel.until,
    }


def list_dead(db_url: str, sel: Selection | None = None, *, limit: int = 50) -> list[DeadLetter]:
    sel = sel or Selection()
    if isinstance(limit, bool) or not 0 < limit <= MAX_LISTED:
        raise InvalidInput(f"must be 1 to {MAX_LISTED}", where="--limit")
    with connect(db_url, autocommit=True) as conn:
        params = _params(conn, sel)
        params["limit"] = limit
        rows = conn.execute(query("delivery", "dlq_list"), params).fetchall()
    return [DeadLetter(*r) for r in rows]


def replay(db_url: str, sel: Selection, *, actor: str = "cli", run_id: str | None = None) -> int:
    """Return dead rows to the queue (and wake the workers); returns how many."""
    if sel.is_empty():
        raise InvalidInput(
            "say which dead letters: ids, --webhook, --since/--until", where="replay"
        )
    with connect(db_url) as conn:
        params = _params(conn, sel)
        ids = check_ids(sel.ids)
        if ids:
            # Every id named must be a dead letter: nothing is replayed otherwise.
            _refuse_missing(conn, ids)
        params.update(actor=f"replayed by {actor}", run_id=run_id)
        row = conn.execute(query("delivery", "dlq_replay"), params).fetchone()
        count, last_id = (int(row[0]), row[1]) if row else (0, None)
        if count:
            conn.execute("SELECT pg_notify('alert_delivery_queue', %s)", (str(last_id),))
        conn.commit()
    return count
