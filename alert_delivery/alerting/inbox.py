"""The in-app inbox as users read it (the delivery engine writes one row per recipient)."""

from dataclasses import dataclass
from datetime import datetime

import psycopg

from alert_delivery.db import query
from alert_delivery.errors import InvalidInput


@dataclass(frozen=True)
class InboxItem:
    message_id: int
    recipient: str
    alert_id: int | None
    severity: str
    title: str
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True)
class InboxMessage:
    message_id: int
    recipient: str
    alert_id: int | None
    severity: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


def list_inbox(
    conn: psycopg.Connection,
    *,
    recipient: str | None = None,
    include_read: bool = False,
    limit: int = 50,
) -> list[InboxItem]:
    rows = conn.execute(
        query("alerting", "inbox_list"),
        {"recipient": recipient, "all": include_read, "limit": limit},
    ).fetchall()
    return [InboxItem(*row) for row in rows]


def read_message(conn: psycopg.Connection, message_id: int) -> InboxMessage:
    """The whole message; marks it read."""
    row = conn.execute(query("alerting", "inbox_read"), {"message_id": message_id}).fetchone()
    if row is None:
        raise InvalidInput(f"no inbox message {message_id}", where="message_id")
    return InboxMessage(*row)
