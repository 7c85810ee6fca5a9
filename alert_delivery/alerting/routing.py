"""Routing rules with Alertmanager's semantics.

Rules are tried in priority order; the first whose matchers all match an alert decides, unless
it says ``continue``, in which case later matching rules add their receivers too. The fallback
rules (the default receiver) take what no other rule routes to an active webhook. A rule targets
specific webhooks and/or every active webhook of some kinds. Per rule: ``group_by`` labels,
``group_wait`` (0: each alert at once), ``group_interval``, ``repeat_interval``, ``max_batch``,
and ``escalate_after`` (unset: the severity default, CRITICAL at once, WARNING 10 min, INFO
30 min; 0 only when chosen). The matching itself runs in SQL (``alert_delivery.route_pairs``).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import errors

from alert_delivery.alerting import matchers as m
from alert_delivery.alerting.labels import validate_label_name
from alert_delivery.alerting.matchers import Matcher
from alert_delivery.db import query, transaction
from alert_delivery.errors import InvalidInput

KINDS = ("slack", "mattermost", "pagerduty", "email", "webhook", "inbox")
DEFAULT_GROUP_BY = ("severity", "alert_type")
DEFAULT_GROUP_WAIT_S = 30
DEFAULT_GROUP_INTERVAL_S = 30
DEFAULT_REPEAT_INTERVAL_S = 14400
DEFAULT_MAX_BATCH = 10
MAX_SECONDS = 86400 * 30


@dataclass(frozen=True)
class RoutingRule:
    rule_id: int
    name: str
    priority: int
    matchers: list[Matcher]
    continues: bool
    target_kinds: list[str]
    webhooks: list[str]
    group_by: list[str]
    group_wait_s: int
    group_interval_s: int
    repeat_interval_s: int
    max_batch: int
    escalate_after_s: int | None
    is_fallback: bool
    active: bool


def _seconds(value: int | None, field: str, *, low: int = 0, high: int = MAX_SECONDS) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"must be a whole number of seconds {low}-{high}, got {value!r}", where=field
        )
    return value


def check_in_database(conn: psycopg.Connection, matchers: Sequence[Matcher], where: str) -> None:
    """PostgreSQL compiles every regular expression it will run (Python already accepted it)."""
    for i, matcher in enumerate(matchers):
        if matcher.op in ("=~", "!~"):
            try:
                with conn.transaction():
                    conn.execute("SELECT '' ~ ('^(?:' || %s::text || ')$')", (matcher.value,))
            except errors.InvalidRegularExpression as exc:
                cause = (exc.diag.message_primary or "invalid").splitlines()[0]
                raise InvalidInput(
                    f"PostgreSQL refuses {matcher.value[:80]!r}: {cause}", where=f"{where}[{i}]"
                ) from None


def rule_matchers(
    match: Sequence[str] = (),
    *,
    severity: str | None = None,
    alert_type: str | None = None,
    operation_type: str | None = None,
) -> list[Matcher]:
    """``--match`` expressions plus today's shorthands (``ALL`` or empty: no matcher)."""
    return [
        *m.parse_all(match),
        *m.shorthand(severity=severity, alert_type=alert_type, operation_type=operation_type),
    ]


def add_rule(
    conn: psycopg.Connection,
    name: str,
    *,
    match: Sequence[str] = (),
    severity: str = "ALL",
    alert_type: str = "ALL",
    operation_type: str = "ALL",
    webhooks: Sequence[str] = (),
    kinds: Sequence[str] = (),
    continues: bool = False,
    escalate_after_s: int | None = None,
    group_wait_s: int | None = None,
    group_interval_s: int = DEFAULT_GROUP_INTERVAL_S,
    repeat_interval_s: int = DEFAULT_REPEAT_INTERVAL_S,
    max_batch: int = DEFAULT_MAX_BATCH,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    priority: int = 100,
    fallback: bool = False,
    notify_email: bool = False,
    notify_inapp: bool = False,
) -> int:
    """Add a rule; malformed rules raise ``InvalidInput`` naming the field. Returns the id."""
    if not (name or "").strip():
        raise InvalidInput("must not be empty", where="name")
    selected = rule_matchers(
        match, severity=severity, alert_type=alert_type, operation_type=operation_type
    )
    check_in_database(conn, selected, "match")
    bad_kinds = [k for k in kinds if k not in KINDS]
    if bad_kinds:
        raise InvalidInput(
            f"unknown kind {bad_kinds[0]!r} (one of {', '.join(KINDS)})", where="kinds"
        )
    if len(group_by) > 64:
        raise InvalidInput("at most 64 labels", where="group_by")
    for label in group_by:
        validate_label_name(label, where="group_by")
    if not (webhooks or kinds or notify_email or notify_inapp):
        raise InvalidInput("a rule needs at least one webhook or kind", where="webhooks")
    found: dict[str, int] = dict(
        conn.execute(query("alerting", "webhook_ids_by_name"), {"names": list(webhooks)}).fetchall()
    )
    missing = [w for w in webhooks if w not in found]
    if missing:
        raise InvalidInput(f"unknown receiver (webhook) {missing[0]!r}", where="webhooks")
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not -(10**6) <= priority <= 10**6
    ):
        raise InvalidInput(
            f"must be a whole number within +-1000000, got {priority!r}", where="priority"
        )
    if group_wait_s is None:
        # CRITICAL-only rules page at once; everything else batches (10 alerts or 30 s).
        critical = any(
            x.name == "severity" and x.op == "=" and x.value == "CRITICAL" for x in selected
        )
        group_wait_s = 0 if critical else DEFAULT_GROUP_WAIT_S
    params = {
        "name": name.strip(),
        "priority": priority,
        "matchers": json.dumps(m.to_json(selected)),
        "continues": bool(continues),
        "escalate_after_s": _seconds(escalate_after_s, "escalate_after_s"),
        "group_wait_s": _seconds(group_wait_s, "group_wait_s", high=86400),
        "group_interval_s": _seconds(group_interval_s, "group_interval_s", low=1, high=86400),
        "repeat_interval_s": _seconds(repeat_interval_s, "repeat_interval_s"),
        "max_batch": _seconds(max_batch, "max_batch", low=1, high=100),
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
    rules = []
    for row in conn.execute(query("alerting", "list_rules")).fetchall():
        values = list(row)
        values[3] = m.from_json(values[3], where="matchers")
        rules.append(RoutingRule(*values))
    return rules


def remove_rule(conn: psycopg.Connection, name: str) -> None:
    if conn.execute(query("alerting", "delete_rule"), {"name": name}).fetchone() is None:
        raise InvalidInput(f"no routing rule named {name!r}", where="name")


def ensure_rule(
    db_url: str,
    *,
    name: str,
    webhook_ids: Sequence[int] = (),
    match: Sequence[str] = (),
    kinds: Sequence[str] = (),
    group_wait_s: int = 0,
    continues: bool = True,
) -> int:
    """Idempotent: the rule ``name`` exists and targets (at least) ``webhook_ids``; its id.

    For drivers such as the demo, which open their own transaction. Such a rule should select
    only its own alerts (``match``) and ``continue``, so the ordinary rules still apply.
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
                match=match,
                webhooks=[n for (n,) in names],
                kinds=kinds,
                group_wait_s=group_wait_s,
                continues=continues,
                priority=5,
            )
        rule_id = int(row[0])
        for webhook_id in webhook_ids:
            conn.execute(
                query("alerting", "ensure_rule_target"),
                {"rule_id": rule_id, "webhook_id": webhook_id},
            )
        return rule_id
