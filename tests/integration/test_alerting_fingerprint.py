"""The SQL and Python fingerprints of a label set agree, and raising stores that fingerprint."""

import hashlib

import psycopg
import pytest
from psycopg.types.json import Jsonb

from alert_delivery.alerting.labels import fingerprint, legacy_labels
from tests.support.alerting import alert

LABEL_SETS = [
    {"a": "1"},
    {"b": "x", "a": "y", "A": "z", "_": ""},
    {"alertname": "Down", "job": "api", "instance": "10.0.0.1:9100"},
    {"name": "tïtle ☃", "other": "a\x1fb\x1ec"},
    {f"l{i}": str(i) for i in range(64)},
]


@pytest.mark.parametrize("labels", LABEL_SETS)
def test_fingerprints_agree(conn: psycopg.Connection, labels: dict[str, str]) -> None:
    row = conn.execute("SELECT alert_delivery.labels_fingerprint(%s)", (Jsonb(labels),)).fetchone()
    assert row == (fingerprint(labels),)


@pytest.mark.parametrize("labels", [*LABEL_SETS, {"source": "a", "job": "x"}, {"source": "b"}])
def test_one_pass_hashes_equal_the_two_functions(
    conn: psycopg.Connection, labels: dict[str, str]
) -> None:
    row = conn.execute(
        "SELECT alert_delivery.alert_hashes(%(l)s, 't ☃', 'd'),"
        " alert_delivery.labels_fingerprint(%(l)s),"
        " alert_delivery.alert_content_hash(%(l)s, 't ☃', 'd')",
        {"l": Jsonb(labels)},
    ).fetchone()
    assert row is not None
    assert row[0] == {"fingerprint": row[1], "content_hash": row[2]}
    assert row[1] == fingerprint(labels)
    content = {k: v for k, v in labels.items() if k != "source"}
    expected = "\x1f".join([fingerprint(content), "t ☃", "d"])
    assert row[2] == hashlib.sha256(expected.encode()).hexdigest()


def test_raising_stores_the_label_set_fingerprint(conn: psycopg.Connection) -> None:
    raised = alert(conn)
    stored = conn.execute(
        "SELECT fingerprint FROM alert_delivery.alerts WHERE alert_id = %s", (raised.alert_id,)
    ).fetchone()
    assert stored == (fingerprint(legacy_labels("test", "merge", "STATISTICAL", "CRITICAL")),)
