"""Inhibition rules with Alertmanager's meaning: while an open alert matches the source
matchers, alerts matching the target matchers that carry the same values of every ``equal``
label are held back (recorded, and notified once nothing inhibits them any more). The default
rule (0003): a CRITICAL alert inhibits WARNING and INFO alerts of the same operation.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from alert_delivery.alerting import matchers as m
from alert_delivery.alerting.labels import validate_label_name
from alert_delivery.alerting.matchers import Matcher
from alert_delivery.alerting.routing import check_in_database
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput


@dataclass(frozen=True)
class InhibitRule:
    inhibit_id: int
    source: list[Matcher]
    target: list[Matcher]
    equal: list[str]
    active: bool


def add_inhibit_rule(
    conn: psycopg.Connection,
    *,
    source: Sequence[str],
    target: Sequence[str],
    equal: Sequence[str] = (),
) -> int:
    src = m.parse_all(source, where="source")
    dst = m.parse_all(target, where="target")
    if not src:
        raise InvalidInput("an inhibition rule needs at least one source matcher", where="source")
    if not dst:
        raise InvalidInput("an inhibition rule needs at least one target matcher", where="target")
    check_in_database(conn, src, "source")
    check_in_database(conn, dst, "target")
    for label in equal:
        validate_label_name(label, where="equal")
    row = conn.execute(
        query("alerting", "insert_inhibit_rule"),
        {
            "source": json.dumps(m.to_json(src)),
            "target": json.dumps(m.to_json(dst)),
            "equal": list(dict.fromkeys(equal)),
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def list_inhibit_rules(conn: psycopg.Connection) -> list[InhibitRule]:
    return [
        InhibitRule(
            int(r[0]),
            m.from_json(r[1], where="source_matchers"),
            m.from_json(r[2], where="target_matchers"),
            list(r[3]),
            bool(r[4]),
        )
        for r in conn.execute(query("alerting", "list_inhibit_rules")).fetchall()
    ]


def remove_inhibit_rule(conn: psycopg.Connection, inhibit_id: int) -> None:
    found = conn.execute(
        query("alerting", "delete_inhibit_rule"), {"inhibit_id": inhibit_id}
    ).fetchone()
    if found is None:
        raise InvalidInput(f"no inhibition rule {inhibit_id}", where="inhibit_id")
