"""Migrations: ordered, idempotent, atomic per file, and equal to the schema at head.

Function files (sql/functions/*.sql) are applied at head, recorded by checksum, re-applied when
they change, and atomically: a broken file leaves the previous bodies in place.
"""

import hashlib
import re
from pathlib import Path

import psycopg
import pytest

from alert_delivery.cli import main
from alert_delivery.db.migrations import discover, split_statements, status, upgrade
from alert_delivery.db.queries import sql_dir
from alert_delivery.errors import InvalidInput, MigrationError

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
SELECT 'function', p.proname, pg_get_function_identity_arguments(p.oid),
       CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END, ''
FROM pg_proc p WHERE p.pronamespace = 'alert_delivery'::regnamespace
UNION ALL
SELECT 'trigger', c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid), '', ''
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'alert_delivery'::regnamespace AND NOT t.tgisinternal
ORDER BY 1, 2, 3
"""

# Landed history: these files never change (PLAN.md). A new migration is a new file.
LANDED_MIGRATIONS = {
    "0001_data_model.sql": "8a1a5a7e144dafaa632ef5ca8b37e732dcd9650cc903b5bf2d6fe3f9f0de02c7",
    "0002_detection.sql": "a3fda93ca4acbbb7b81b9ee2d1500f708f233d23451c11c8056b18d31f5953de",
    "0003_alerting.sql": "308772066b64f572e884f5f5f575e2a84c25c89c3661389856cc364cc243208e",
    "0004_delivery.sql": "2f27998f77f825da113941f028949e145db6da89ad0b5bee486ac91bc485a3cd",
    "0005_operations.sql": "6b870dabd2e40927aecc829edadddb3f3661480123635118909b025473b9b76c",
    "0006_escalation.sql": "10a4621bb2fbeb19e40fcb539466fe8a1fd358c5fd94dab183e65309ab476c29",
    "0007_delivery_indexes.sql": "5a854f42719cffafcfe963ee80c741db75da426fa7ef95137ad980b401c4ed39",
}
MAX_SQL_LINES = 400

# Every function of the schema except those an extension owns.
FUNCTIONS_QUERY = b"""
SELECT DISTINCT p.proname FROM pg_proc p
WHERE p.pronamespace = 'alert_delivery'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1
"""
_DEFINITION = re.compile(
    r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|AGGREGATE)\s+"
    r'(?:"?([A-Za-z_][A-Za-z0-9_]*)"?\.)?"?([A-Za-z_][A-Za-z0-9_]*)"?',
    re.IGNORECASE,
)


def schema_of(url: str) -> list[tuple[str, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(map(str, row)) for row in conn.execute(SCHEMA_QUERY).fetchall()]


def test_upgrade_twice_is_a_noop(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        first = upgrade(conn)
        assert [m.version for m in first] == [m.version for m in discover()]
        assert upgrade(conn) == []
        assert all(row.applied_at for row in status(conn))


def recorded_functions(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            b"SELECT file, checksum FROM alert_delivery.schema_functions ORDER BY 1"
        )
        return [(str(f), str(c)) for f, c in rows]


def test_one_by_one_equals_head(empty_db_url: str, db_url: str) -> None:
    """Tables, indexes, constraints, views, function bodies and triggers all match."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        for migration in discover():
            applied = upgrade(conn, target=migration.version)
            assert [m.version for m in applied] == [migration.version]
        assert upgrade(conn) == []
        assert all(f.state == "applied" for f in status(conn).functions)
    assert schema_of(empty_db_url) == schema_of(db_url)
    assert len(schema_of(db_url)) > 100
    assert recorded_functions(empty_db_url) == recorded_functions(db_url)


def defined_in_function_files() -> dict[str, str]:
    """Function name -> the sql/functions file whose top-level statement defines it."""
    defined: dict[str, str] = {}
    for path in sorted((sql_dir() / "functions").glob("*.sql")):
        for statement in split_statements(path.read_text()):
            code = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.DOTALL)
            match = _DEFINITION.match(code)
            if match and (match.group(1) or "alert_delivery").lower() == "alert_delivery":
                defined.setdefault(match.group(2).lower(), path.name)
    return defined


def test_every_function_is_defined_in_sql_functions(conn: psycopg.Connection) -> None:
    """No function body lives only in a migration: each one is in a sql/functions file."""
    in_database = [str(r[0]) for r in conn.execute(FUNCTIONS_QUERY)]
    assert in_database, "the schema has functions"
    defined = defined_in_function_files()
    missing = [name for name in in_database if name.lower() not in defined]
    assert missing == [], f"functions not defined by any sql/functions/*.sql file: {missing}"


def test_no_sql_file_over_the_line_limit() -> None:
    exempt = {sql_dir() / "migrations" / name for name in LANDED_MIGRATIONS}
    assert all(path.is_file() for path in exempt)
    too_long = {
        str(path.relative_to(sql_dir())): lines
        for path in sorted(sql_dir().rglob("*.sql"))
        if path not in exempt and (lines := len(path.read_text().splitlines())) > MAX_SQL_LINES
    }
    assert too_long == {}, f"split these files (at most {MAX_SQL_LINES} lines): {too_long}"


def test_landed_migrations_are_byte_identical() -> None:
    for name, checksum in LANDED_MIGRATIONS.items():
        data = (sql_dir() / "migrations" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == checksum, f"{name} was edited: add a migration"


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


# Function files ------------------------------------------------------------------------------
F_ONE = (
    "CREATE OR REPLACE FUNCTION alert_delivery.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
)
G_PLUS_ONE = (
    "-- g depends on f: file-name order matters\n"
    "SET LOCAL search_path TO alert_delivery, public;\n"
    "CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql\n"
    "AS $$ SELECT alert_delivery.f() + 1 $$;\n"
)


def scalar(conn: psycopg.Connection, sql: bytes) -> object:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def recorded(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute(b"SELECT file, checksum FROM alert_delivery.schema_functions")
    return {str(f): str(c) for f, c in rows}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """A migrations directory (one table) and a functions directory (f, then g using f)."""
    migrations, functions = tmp_path / "migrations", tmp_path / "functions"
    migrations.mkdir()
    functions.mkdir()
    (migrations / "0001_base.sql").write_text("CREATE TABLE alert_delivery.t (id int);\n")
    (functions / "10_f.sql").write_text(F_ONE)
    (functions / "20_g.sql").write_text(G_PLUS_ONE)
    return migrations, functions


def test_function_files_apply_at_head_once(empty_db_url: str, trees: tuple[Path, Path]) -> None:
    migrations, functions = trees
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        first = upgrade(conn, migrations, functions_dir=functions)
        assert [m.version for m in first] == [1]
        assert [f.filename for f in first.functions] == ["10_f.sql", "20_g.sql"]
        assert scalar(conn, b"SELECT alert_delivery.g()") == 2
        assert recorded(conn) == {p.name: sha256_of(p) for p in functions.iterdir()}
        assert [(f.filename, f.state) for f in status(conn, functions_dir=functions).functions] == [
            ("10_f.sql", "applied"),
            ("20_g.sql", "applied"),
        ]
        again = upgrade(conn, migrations, functions_dir=functions)
        assert again == []
        assert again.functions == []
        # The session's search_path is the caller's: the file's SET LOCAL ended with the
        # transaction.
        assert "alert_delivery" not in str(scalar(conn, b"SHOW search_path"))


def test_changed_new_or_removed_function_file_reapplies_all(
    empty_db_url: str, trees: tuple[Path, Path]
) -> None:
    migrations, functions = trees
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        upgrade(conn, migrations, functions_dir=functions)
        (functions / "10_f.sql").write_text(F_ONE.replace("SELECT 1", "SELECT 5"))
        states = {f.filename: f.state for f in status(conn, functions_dir=functions).functions}
        assert states == {"10_f.sql": "changed", "20_g.sql": "applied"}
        result = upgrade(conn, migrations, functions_dir=functions)
        assert result == []
        assert [f.filename for f in result.functions] == ["10_f.sql", "20_g.sql"]
        assert scalar(conn, b"SELECT alert_delivery.g()") == 6

        h = functions / "30_h.sql"
        h.write_text(
            "CREATE FUNCTION alert_delivery.h() RETURNS int LANGUAGE sql AS $$ SELECT 3 $$"
        )
        states = {f.filename: f.state for f in status(conn, functions_dir=functions).functions}
        assert states["30_h.sql"] == "pending"
        assert len(upgrade(conn, migrations, functions_dir=functions).functions) == 3
        assert scalar(conn, b"SELECT alert_delivery.h()") == 3

        h.unlink()
        states = {f.filename: f.state for f in status(conn, functions_dir=functions).functions}
        assert states["30_h.sql"] == "removed"
        assert len(upgrade(conn, migrations, functions_dir=functions).functions) == 2
        assert set(recorded(conn)) == {"10_f.sql", "20_g.sql"}
        assert upgrade(conn, migrations, functions_dir=functions).functions == []


def test_broken_function_file_keeps_the_previous_bodies(
    empty_db_url: str, trees: tuple[Path, Path]
) -> None:
    migrations, functions = trees
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        upgrade(conn, migrations, functions_dir=functions)
        before = recorded(conn)
        (functions / "10_f.sql").write_text(F_ONE.replace("SELECT 1", "SELECT 7"))
        (functions / "20_g.sql").write_text(
            "CREATE OR REPLACE FUNCTION alert_delivery.g() RETURNS int LANGUAGE sql"
            " AS $$ SELECT count(*)::int FROM alert_delivery.missing $$;\n"
        )
        with pytest.raises(MigrationError) as info:
            upgrade(conn, migrations, functions_dir=functions)
        message = str(info.value)
        assert "20_g.sql" in message
        assert "CREATE OR REPLACE FUNCTION alert_delivery.g()" in message
        assert "does not exist" in message
        # One transaction: the valid change to f rolled back with the broken g.
        assert scalar(conn, b"SELECT alert_delivery.f()") == 1
        assert scalar(conn, b"SELECT alert_delivery.g()") == 2
        assert recorded(conn) == before


def test_functions_wait_for_head(empty_db_url: str, trees: tuple[Path, Path]) -> None:
    """Below head only migrations run: head functions may use columns a later migration adds."""
    migrations, functions = trees
    (migrations / "0002_column.sql").write_text("ALTER TABLE alert_delivery.t ADD COLUMN v int;\n")
    (functions / "30_uses_v.sql").write_text(
        "CREATE OR REPLACE FUNCTION alert_delivery.sum_v() RETURNS bigint LANGUAGE sql"
        " AS $$ SELECT sum(v) FROM alert_delivery.t $$;\n"
    )
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        first = upgrade(conn, migrations, target=1, functions_dir=functions)
        assert [m.version for m in first] == [1]
        assert first.functions == []
        assert recorded(conn) == {}
        rest = upgrade(conn, migrations, target=2, functions_dir=functions)
        assert [m.version for m in rest] == [2]
        assert len(rest.functions) == 3
        assert scalar(conn, b"SELECT alert_delivery.sum_v()") is None


def test_a_new_migration_reapplies_unchanged_function_files(
    empty_db_url: str, trees: tuple[Path, Path]
) -> None:
    migrations, functions = trees
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        upgrade(conn, migrations, functions_dir=functions)
        (migrations / "0002_drop.sql").write_text("DROP FUNCTION alert_delivery.g();\n")
        result = upgrade(conn, migrations, functions_dir=functions)
        assert [m.version for m in result] == [2]
        assert len(result.functions) == 2
        assert scalar(conn, b"SELECT alert_delivery.g()") == 2


@pytest.mark.parametrize("missing", [True, False])
def test_missing_or_empty_functions_dir_applies_nothing(
    empty_db_url: str, trees: tuple[Path, Path], missing: bool
) -> None:
    migrations, functions = trees
    for path in functions.iterdir():
        path.unlink()
    if missing:
        functions.rmdir()
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        result = upgrade(conn, migrations, functions_dir=functions)
        assert [m.version for m in result] == [1]
        assert result.functions == []
        assert recorded(conn) == {}
        assert status(conn, migrations, functions_dir=functions).functions == []


# --target ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [0, -1, 999])
def test_target_outside_known_versions_is_refused(empty_db_url: str, target: int) -> None:
    highest = max(m.version for m in discover())
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(InvalidInput) as info:
            upgrade(conn, target=target)
        assert f"version {target}" in str(info.value)
        assert f"highest known version {highest}" in str(info.value)
        assert scalar(conn, b"SELECT to_regclass('alert_delivery.schema_migrations')") is None


@pytest.mark.parametrize("target", ["0", "999"])
def test_cli_target_outside_known_versions_is_one_line_exit_2(
    empty_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    target: str,
) -> None:
    monkeypatch.setenv("ALERT_DELIVERY_DATABASE_URL", empty_db_url)
    highest = max(m.version for m in discover())
    assert main(["db", "upgrade", "--target", target]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("alert-delivery: error: --target: no migration version")
    assert target in lines[0]
    assert f"highest known version {highest}" in lines[0]


def test_cli_status_reports_function_files(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "status"]) == 0
    out = capsys.readouterr().out
    files = sorted((sql_dir() / "functions").glob("*.sql"))
    if files:
        assert f"functions: {len(files)} file(s) in sql/functions, all applied" in out
        assert all(f"functions/{path.name}" in out for path in files)
    else:
        assert "functions: no files in sql/functions" in out
