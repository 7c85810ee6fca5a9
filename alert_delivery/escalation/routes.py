"""The escalation route: who hears about escalations, by webhook and/or kind.

Kept apart from routing rules so ordinary notifications never reach it. An escalation goes to
every active route whose label matchers match the alert; with none, to the webhooks the alert's
trigger went to.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import errors

from alert_delivery.alerting import matchers as m
from alert_delivery.alerting.matchers import Matcher
from alert_delivery.alerting.routing import check_in_database
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

REASONS = ("unacknowledged", "stale_delivery", "near_dead_letter")
_KINDS = ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox")


@dataclass(frozen=True)
class EscalationRoute:
    route_id: int
    name: str
    matchers: list[Matcher]
    reasons: list[str]
    target_kinds: list[str]
    active: bool
    webhooks: list[str]


def _one_of(values: Sequence[str], allowed: Sequence[str], field: str) -> list[str]:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise InvalidInput(f"unknown {bad[0]!r} (one of {', '.join(allowed)})", where=field)
    return list(dict.fromkeys(values))


def add_route(
    conn: psycopg.Connection,
    name: str,
    *,
    webhooks: Sequence[str] = (),
    kinds: Sequence[str] = (),
    match: Sequence[str] = (),
    severity: str = "ALL",
    alert_type: str = "ALL",
    operation_type: str = "ALL",
    reasons: Sequence[str] = REASONS,
) -> int:
    """Add an escalation route; bad input raises ``InvalidInput`` naming the field. Its id."""
    if not (name or "").strip():
        raise InvalidInput("must not be empty", where="name")
    selected = [
        *m.parse_all(match),
        *m.shorthand(severity=severity, alert_type=alert_type, operation_type=operation_type),
    ]
    check_in_database(conn, selected, "match")
    if not reasons:
        raise InvalidInput(f"needs at least one of {', '.join(REASONS)}", where="reasons")
    if not (webhooks or kinds):
        raise InvalidInput("a route needs at least one webhook or kind", where="webhooks")
    found: dict[str, int] = dict(
        conn.execute(
            query("escalation", "webhook_ids_by_name"), {"names": list(webhooks)}
        ).fetchall()
    )
    missing = [w for w in webhooks if w not in found]
    if missing:
        raise InvalidInput(f"unknown webhook {missing[0]!r}", where="webhooks")
    params = {
        "name": name.strip(),
        "matchers": json.dumps(m.to_json(selected)),
        "reasons": _one_of(reasons, REASONS, "reasons"),
        "target_kinds": _one_of(kinds, _KINDS, "kinds"),
    }
    try:
        with conn.transaction():
            row = conn.execute(query("escalation", "insert_route"), params).fetchone()
            assert row is not None
            route_id = int(row[0])
            for webhook in dict.fromkeys(webhooks):
                conn.execute(
                    query("escalation", "insert_route_target"),
                    {"route_id": route_id, "webhook_id": found[webhook]},
                )
    except errors.UniqueViolation:
        raise InvalidInput(f"a route named {name.strip()!r} already exists", where="name") from None
    return route_id


def list_routes(conn: psycopg.Connection) -> list[EscalationRoute]:
    rows = conn.execute(query("escalation", "list_routes")).fetchall()
    return [
        EscalationRoute(row[0], row[1], m.from_json(row[2], where="matchers"), *row[3:])
        for row in rows
    ]


def remove_route(conn: psycopg.Connection, name: str) -> None:
    if conn.execute(query("escalation", "delete_route"), {"name": name}).fetchone() is None:
        raise InvalidInput(f"no escalation route named {name!r}", where="name")
