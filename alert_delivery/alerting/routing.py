"""Routing rules: severity, alert type and operation type (``ALL`` wildcard) to webhooks.

A rule targets specific webhooks and/or every active webhook of some kinds (the defaults do the
latter, since webhooks are registered after the rules exist). The matching itself happens in SQL
(``alert_delivery.route_targets``) for both producer paths.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import errors

from alert_delivery.db import query, transaction
from alert_delivery.errors import InvalidInput

SEVERITIES = ("ALL", "INFO", "WARNING", "CRITICAL")
KINDS = ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox")
GROUP_FIELDS = ("source", "operation_type", "alert_type", "severity")


@dataclass(frozen=True)
class RoutingRule:
    rule_id: int
    name: str
    priority: int
    severity: str
    alert_type: str
    operation_type: str
    target_kinds: list[str]
    escalate_after_s: int
    group_window_s: int
    repeat_interval_s: int
    is_fallback: bool
    active: bool
    webhooks: list[str]


def _non_negative(value: int, field: str) -> int:
    if value < 0:
        raise InvalidInput(f"must be >= 0, got {value}", where=field)
    return value


def _matcher(value: str, field: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput("must not be empty (use ALL to match everything)", where=field)
    return "ALL" if text.upper() == "ALL" else text


def add_rule(
    conn: psycopg.Connection,
    name: str,
    *,
    severity: str = "ALL",
    alert_type: str = "ALL",
    operation_type: str = "ALL",
    webhooks: Sequence[str] = (),
    kinds: Sequence[str] = (),
    escalate_after_s: int = 0,
    group_window_s: int | None = None,
    repeat_interval_s: int = 14400,
    priority: int = 100,
    fallback: bool = False,
    notify_email: bool = False,
    notify_inapp: bool = False,
    group_by: Sequence[str] = ("severity", "alert_type"),
) -> int:
    """Add a rule; malformed rules raise ``InvalidInput`` naming the field. Returns the id."""
    if not (name or "").strip():
        raise InvalidInput("must not be empty", where="name")
    sev = (severity or "").strip().upper()
    if sev not in SEVERITIES:
        raise InvalidInput(
            f"must be one of {', '.join(SEVERITIES)}, not {severity!r}", where="severity"
        )
    bad_kinds = [k for k in kinds if k not in KINDS]
    if bad_kinds:
        raise InvalidInput(
            f"unknown kind {bad_kinds[0]!r} (one of {', '.join(KINDS)})", where="kinds"
        )
    bad_group = [g for g in group_by if g not in GROUP_FIELDS]
    if bad_group or not group_by:
        raise InvalidInput(f"must be fields of {', '.join(GROUP_FIELDS)}", where="group_by")
    if not (webhooks or kinds or notify_email or notify_inapp):
        raise InvalidInput("a rule needs at least one webhook or kind", where="webhooks")
    found: dict[str, int] = dict(
        conn.execute(query("alerting", "webhook_ids_by_name"), {"names": list(webhooks)}).fetchall()
    )
    missing = [w for w in webhooks if w not in found]
    if missing:
        raise InvalidInput(f"unknown webhook {missing[0]!r}", where="webhooks")
    window = (0 if sev == "CRITICAL" else 30) if group_window_s is None else group_window_s
    params = {
        "name": name.strip(),
        "priority": priority,
        "severity": sev,
        "alert_type": _matcher(alert_type, "alert_type"),
        "operation_type": _matcher(operation_type, "operation_type"),
        "escalate_after_s": _non_negative(escalate_after_s, "escalate_after_s"),
        "group_window_s": _non_negative(window, "group_window_s"),
        "repeat_interval_s": _non_negative(repeat_interval_s, "repeat_interval_s"),
        "target_kinds": list(dict.fromkeys(kinds)),
        "group_by": list(group_by),
        "is_fallback": fallback,
        "notify_email": notify_email,
        "notify_inapp": notify_inapp,
    }
    try:
        with conn.transaction():
            row = conn.execute(query("alerting", "insert_rule"), params).fetchone()
            assert row is not None
            rule_id = int(row[0])
            for webhook in dict.fromkeys(webhooks):
                conn.execute(
                    query("alerting", "insert_rule_target"),
                    {"rule_id": rule_id, "webhook_id": found[webhook]},
                )
    except errors.UniqueViolation:
        raise InvalidInput(f"a rule named {name.strip()!r} already exists", where="name") from None
    return rule_id


def list_rules(conn: psycopg.Connection) -> list[RoutingRule]:
    return [RoutingRule(*row) for row in conn.execute(query("alerting", "list_rules")).fetchall()]


def remove_rule(conn: psycopg.Connection, name: str) -> None:
    if conn.execute(query("alerting", "delete_rule"), {"name": name}).fetchone() is None:
        raise InvalidInput(f"no routing rule named {name!r}", where="name")


def ensure_rule(
    db_url: str,
    *,
    name: str,
    webhook_ids: Sequence[int] = (),
    severity: str = "ALL",
    kinds: Sequence[str] = (),
    group_window_s: int = 0,
) -> int:
    """Idempotent: the rule ``name`` exists and targets (at least) ``webhook_ids``; its id.

    For drivers such as the demo, which open their own transaction.
    """
    with transaction(db_url) as conn:
        row = conn.execute(query("alerting", "rule_id_by_name"), {"name": name}).fetchone()
        if row is None:
            names = conn.execute(
                query("alerting", "webhook_names_by_id"), {"ids": list(webhook_ids)}
            ).fetchall()
            if len(names) != len(set(webhook_ids)):
                raise InvalidInput("unknown webhook id", where="webhook_ids")
            return add_rule(
                conn,
                name,
                severity=severity,
                webhooks=[n for (n,) in names],
                kinds=kinds,
                group_window_s=group_window_s,
                priority=5,
            )
        rule_id = int(row[0])
        for webhook_id in webhook_ids:
            conn.execute(
                query("alerting", "ensure_rule_target"),
                {"rule_id": rule_id, "webhook_id": webhook_id},
            )
        return rule_id
