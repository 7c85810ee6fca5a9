"""compact(): comments and whitespace go, quoted text and literal continuation stay."""

import re

import pytest

from alert_delivery.db.queries import compact, load_module, raw_query, sql_dir


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1 -- one\n  FROM t", "SELECT 1\nFROM t"),
        ("SELECT   a,\tb FROM t", "SELECT a, b FROM t"),
        ("SELECT '-- not a comment'  -- a comment", "SELECT '-- not a comment'"),
        ("SELECT 'it''s  --  x',  \"a  b\"", "SELECT 'it''s  --  x', \"a  b\""),
        # Two literals with a newline between them are one literal: the newline must stay.
        ("SELECT 'a'\n     'b'", "SELECT 'a'\n'b'"),
        ("SELECT 'a' -- note\n 'b'", "SELECT 'a'\n'b'"),
        ("SELECT ''", "SELECT ''"),
        ("-- only a comment\nSELECT 1\n", "SELECT 1"),
        ("SELECT format('%%s', x)", "SELECT format('%%s', x)"),
    ],
)
def test_compact(sql: str, expected: str) -> None:
    assert compact(sql) == expected


@pytest.mark.parametrize("sql", ["SELECT $$a$$", "SELECT E'a\\'b'"])
def test_compact_refuses_what_it_does_not_read(sql: str) -> None:
    with pytest.raises(ValueError, match="dollar quotes or E'' strings"):
        compact(sql)


def test_every_shipped_query_is_compact_and_stable() -> None:
    for path in sorted((sql_dir() / "queries").glob("*.sql")):
        for name, text in load_module(path.stem).items():
            assert compact(text) == text, f"{path.stem}.{name}"


def test_raw_query_numbers_each_name_once_in_order() -> None:
    sql, names = raw_query("delivery", "claim")
    assert names == ("min_age_s", "only", "limit", "lease_s", "worker_id", "cooldown_s")
    assert "%(" not in sql and "%%" not in sql
    # The same name is the same $n wherever it appears, and every $n is one of the names.
    assert set(re.findall(r"\$(\d+)", sql)) == {str(i) for i in range(1, len(names) + 1)}
    assert "token bucket empty at %s/s" in sql
