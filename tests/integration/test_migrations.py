"""Migrations: ordered, idempotent, atomic per file, and equal to the schema at head."""

from pathlib import Path

import psycopg
import pytest

from alert_delivery.db.migrations import discover, split_statements, status, upgrade
from alert_delivery.errors import MigrationError

SCHEMA_QUERY = b"""
SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = 'alert_delivery'
UNION ALL
SELECT 'index', indexname, indexdef, '', '' FROM pg_indexes WHERE schemaname = 'alert_delivery'
UNION ALL
SELECT 'constraint', conname, pg_get_constraintdef(oid), '', '' FROM pg_constraint
WHERE connamespace = 'alert_delivery'::regnamespace
UNION ALL
SELECT 'view', viewname, definition, '', '' FROM pg_views WHERE schemaname = 'alert_delivery'
UNION ALL
SELECT 'function', p.proname, pg_get_function_identity_arguments(p.oid), '', ''
FROM pg_proc p WHERE p.pronamespace = 'alert_delivery'::regnamespace
ORDER BY 1, 2, 3
"""


def schema_of(url: str) -> list[tuple[str, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(map(str, row)) for row in conn.execute(SCHEMA_QUERY).fetchall()]


def test_upgrade_twice_is_a_noop(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        first = upgrade(conn)
        assert [m.version for m in first] == [m.version for m in discover()]
        assert upgrade(conn) == []
        assert all(row.applied_at for row in status(conn))


def test_one_by_one_equals_head(empty_db_url: str, db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        for migration in discover():
            applied = upgrade(conn, target=migration.version)
            assert [m.version for m in applied] == [migration.version]
    assert schema_of(empty_db_url) == schema_of(db_url)
    assert len(schema_of(db_url)) > 100


def test_failing_migration_keeps_previous_version(empty_db_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text(
        "CREATE TABLE alert_delivery.t1 (id int);\nINSERT INTO alert_delivery.t1 VALUES (1);\n"
    )
    (tmp_path / "0002_bad.sql").write_text(
        "CREATE TABLE alert_delivery.t2 (id int);\nINSERT INTO alert_delivery.missing VALUES (1);\n"
    )
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(MigrationError) as info:
            upgrade(conn, tmp_path)
        message = str(info.value)
        assert "0002_bad.sql" in message
        assert "INSERT INTO alert_delivery.missing" in message
        assert "does not exist" in message
        versions = [
            r[0] for r in conn.execute(b"SELECT version FROM alert_delivery.schema_migrations")
        ]
        assert versions == [1]
        assert conn.execute(b"SELECT to_regclass('alert_delivery.t2')").fetchone() == (None,)


def test_split_statements_respects_quotes_and_dollar_bodies() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
    INSERT INTO t VALUES ('a;b', "x;y");
    /* block; comment */
    SELECT 1
    """
    statements = split_statements(sql)
    assert len(statements) == 3
    assert statements[0].endswith("END $$")
    assert "'a;b'" in statements[1]


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_nope.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)
