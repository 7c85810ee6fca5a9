"""alert_input takes the plain documents a short way and hands the rest to alert_input_checked:
for any document, both give the same normalised alert or the same error (message and field).

Derandomized and bounded: the same examples every run, near the limits and around them.
"""

from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

PATHS = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Strings around every limit and every normalisation (trimming, upper-casing, empty).
texts = st.one_of(
    st.sampled_from(
        ["", " ", "x", " padded ", "warning", " critical ", "INFO", "Bogus", "☃", "a" * 200]
    ),
    st.sampled_from(["a" * 201, "é" * 200, "x" * 20, "x" * 21, "t" * 10000, "t" * 10001]),
    st.text(max_size=12),
)
values = st.one_of(st.none(), texts, st.integers(-2, 2), st.booleans(), st.just({}), st.just([]))
label_names = st.one_of(
    st.sampled_from(["severity", "alertname", "alert_type", "instance", "source", "_x", "job"]),
    st.sampled_from(["9bad", "has-dash", "", "ünï"]),
)
labels = st.one_of(
    st.dictionaries(label_names, texts, max_size=5),
    st.dictionaries(label_names, values, max_size=3),
    st.just({f"l{i}": "v" * 20 for i in range(30)}),
    st.just({"big": "v" * 1025}),
)
annotations = st.one_of(
    st.dictionaries(st.sampled_from(["title", "summary", "description", "runbook_url"]), texts),
    st.dictionaries(st.sampled_from(["title", "description"]), values, max_size=2),
)
times = st.sampled_from(["2026-12-01T10:00:00Z", "2026-13-01T00:00:00Z", "yesterday", 5, None])
legacy_keys = ["source", "operation_type", "alert_type", "severity", "title", "description"]
legacy = st.fixed_dictionaries(
    {},
    optional={
        **{k: st.one_of(texts, values) for k in legacy_keys},
        "details": st.sampled_from([{}, {"z": 1}, None, [], "x"]),
        "anomaly_id": st.sampled_from([1, 0, 2.5, "7"]),
        "starts_at": times,
        "generator_url": st.sampled_from(["http://prometheus/graph", 7, "g" * 2001]),
        "notify_email": st.sampled_from([True, False, "yes"]),
        "channels": st.sampled_from([["email"], ["pager"], "email"]),
    },
)
labelled = st.fixed_dictionaries(
    {"labels": labels},
    optional={
        "annotations": st.one_of(annotations, st.sampled_from([None, [], "x"])),
        "details": st.sampled_from([{}, {"z": 1}, None, "x"]),
        "starts_at": times,
        "ends_at": times,
        "generator_url": st.sampled_from(["http://prometheus/graph", 7]),
        "severity": texts,
        "bogus": st.just(1),
    },
)


def _near(base: dict[str, Any], keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A plain document with up to two fields changed or removed: mostly on the short way, and
    just off it."""
    changes = st.dictionaries(st.sampled_from(keys), st.one_of(texts, values), max_size=2)
    removed = st.sets(st.sampled_from(keys), max_size=1)
    return st.builds(
        lambda c, r: {k: v for k, v in {**base, **c}.items() if k not in r}, changes, removed
    )


documents = st.one_of(
    legacy,
    labelled,
    st.sampled_from([None, [], "alert", 7]),
    st.deferred(lambda: _near(PLAIN_LEGACY, [*legacy_keys, "details", "labels", "channels"])),
    st.deferred(lambda: _near(PLAIN_LABELS, ["labels", "annotations", "starts_at", "title"])),
    st.deferred(
        lambda: st.builds(
            lambda extra: {**PLAIN_LABELS, "labels": {**PLAIN_LABELS["labels"], **extra}},
            st.dictionaries(label_names, st.one_of(texts, values), max_size=2),
        )
    ),
)

PLAIN_LEGACY = {
    "source": " detection ",
    "operation_type": "checkout",
    "alert_type": "P99_DEGRADATION",
    "severity": " warning ",
    "title": "  slow  ",
    "description": "p99 3x",
    "details": {"z": 4},
}
PLAIN_LABELS = {
    "labels": {"alertname": "HighLatency", "severity": "critical", "instance": "a:9100"},
    "annotations": {"summary": "p99 above 2 s"},
    "starts_at": "2026-12-01T10:00:00Z",
}


def _normalise(conn: psycopg.Connection, function: str, doc: Any) -> tuple[str, Any]:
    try:
        with conn.transaction():
            row = conn.execute(
                f"SELECT alert_delivery.{function}(%s::jsonb, 'alerts[3].')",
                (Jsonb(doc),),
            ).fetchone()
    except psycopg.errors.DatabaseError as exc:
        return "error", (exc.sqlstate, exc.diag.message_primary, exc.diag.column_name)
    assert row is not None
    return "ok", row[0]


@pytest.mark.parametrize("doc", [PLAIN_LEGACY, PLAIN_LABELS], ids=["legacy", "labels"])
def test_plain_documents_are_normalised(conn: psycopg.Connection, doc: dict[str, Any]) -> None:
    kind, fast = _normalise(conn, "alert_input", doc)
    assert kind == "ok"
    assert (kind, fast) == _normalise(conn, "alert_input_checked", doc)
    assert fast["severity"] in {"WARNING", "CRITICAL"}
    assert fast["labels"]["severity"] == fast["severity"]
    assert len(fast["fingerprint"]) == 64


@PATHS
@given(doc=documents)
@example(doc=PLAIN_LEGACY)
@example(doc=PLAIN_LABELS)
@example(doc={**PLAIN_LEGACY, "source": None, "description": ""})
@example(doc={**PLAIN_LEGACY, "severity": "nope"})
@example(doc={**PLAIN_LEGACY, "title": "   "})
@example(doc={"labels": {"alertname": "A"}, "annotations": {"title": " t "}})
@example(doc={"labels": {"severity": "info"}, "annotations": None})
@example(doc={"labels": {}})
@example(doc={**PLAIN_LEGACY, "source": "s" * 201})
@example(doc={**PLAIN_LEGACY, "operation_type": "o" * 201})
@example(doc={**PLAIN_LEGACY, "alert_type": " "})
@example(doc={**PLAIN_LEGACY, "severity": " " * 15 + "INFO" + " " * 2})
@example(doc={**PLAIN_LEGACY, "title": "t" * 10001})
@example(doc={**PLAIN_LEGACY, "description": "d" * 1_000_001})
@example(doc={**PLAIN_LEGACY, "details": None, "starts_at": "2026-13-01T00:00:00Z"})
@example(doc={**PLAIN_LABELS, "labels": {f"l{i}": "v" * 20 for i in range(30)}})
@example(doc={**PLAIN_LABELS, "labels": {f"l{i}": "" for i in range(65)}})
@example(doc={**PLAIN_LABELS, "annotations": {"description": "d" * 1_000_001}})
def test_short_way_and_checked_way_agree(conn: psycopg.Connection, doc: Any) -> None:
    assert _normalise(conn, "alert_input", doc) == _normalise(conn, "alert_input_checked", doc)
