"""PostgreSQL's labels_match agrees with the Python matcher on Alertmanager's table, and a
regular expression PostgreSQL refuses is refused before it is stored."""

import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from alert_delivery.alerting import add_rule, add_silence
from alert_delivery.alerting import matchers as m
from alert_delivery.errors import InvalidInput
from tests.support.alerting import add_webhook
from tests.unit.test_alerting_matchers import CASES


def test_sql_and_python_agree_on_every_case(conn: psycopg.Connection) -> None:
    rows = [(text, labels, expected) for text, labels, expected in CASES]
    matchers = [json.dumps([m.parse(text).as_json()]) for text, _, _ in rows]
    got = conn.execute(
        "SELECT alert_delivery.labels_match(l, x::jsonb)"
        " FROM unnest(%s::jsonb[], %s::text[]) WITH ORDINALITY AS u(l, x, n) ORDER BY n",
        ([Jsonb(labels) for _, labels, _ in rows], matchers),
    ).fetchall()
    assert [g[0] for g in got] == [expected for _, _, expected in rows]


def test_the_equality_fast_path_agrees_with_labels_match(conn: psycopg.Connection) -> None:
    for text, labels, expected in CASES:
        matcher = m.parse(text)
        if matcher.op != "=" or not matcher.value:
            continue
        row = conn.execute(
            "SELECT %s::jsonb @> alert_delivery.matchers_equalities(%s::jsonb)",
            (Jsonb(labels), json.dumps([matcher.as_json()])),
        ).fetchone()
        assert row == (expected,), text


def test_rules_and_silences_store_matchers_and_refuse_bad_ones(conn: psycopg.Connection) -> None:
    add_webhook(conn, "chat", "slack")
    add_rule(conn, "db-team", match=['team="db"', "severity=~WARNING|CRITICAL"], kinds=["slack"])
    row = conn.execute(
        "SELECT matchers FROM alert_delivery.routing_rules WHERE name = 'db-team'"
    ).fetchone()
    assert row == ([["team", "=", "db"], ["severity", "=~", "WARNING|CRITICAL"]],)
    before = conn.execute("SELECT count(*) FROM alert_delivery.silences").fetchone()
    with pytest.raises(InvalidInput) as caught:
        add_silence(conn, match=["team=~(?i)db"], reason="r")
    assert caught.value.where == "match[0]"
    assert conn.execute("SELECT count(*) FROM alert_delivery.silences").fetchone() == before
