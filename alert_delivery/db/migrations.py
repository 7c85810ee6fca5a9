"""Ordered SQL migrations: ``sql/migrations/NNNN_name.sql``, each in its own transaction.

Runs under a session advisory lock so concurrent processes (daemon, webserver, workers) never
apply the same file twice. Each applied file is recorded with its checksum.

Once the database is at head, the function files ``sql/functions/*.sql`` (``CREATE OR REPLACE``)
are applied too, in file-name order, in one transaction under the same lock, and recorded by
checksum in ``schema_functions``: whenever the recorded set of (file, checksum) differs from the
files on disk, or a migration was applied in this run, every file is applied again, so an
upgraded database runs exactly the reviewed code.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from alert_delivery.db.queries import sql_dir
from alert_delivery.errors import InvalidInput, MigrationError

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_301_994_112  # arbitrary, stable: "alert_delivery migrations"

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS alert_delivery;
CREATE TABLE IF NOT EXISTS alert_delivery.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS alert_delivery.schema_functions (
    file text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationStatus:
    migration: Migration
    applied_at: str | None
    changed_since_applied: bool


@dataclass(frozen=True)
class FunctionFile:
    """One ``sql/functions/*.sql`` file: ``CREATE OR REPLACE`` definitions, re-applied at head."""

    path: Path

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class FunctionStatus:
    """``state``: applied, changed (checksum differs), pending (new) or removed (no file)."""

    filename: str
    state: str
    applied_at: str | None


class UpgradeResult(list[Migration]):
    """The migrations applied, plus ``functions``: the function files applied in this run."""

    def __init__(self, migrations: list[Migration], functions: list[FunctionFile]) -> None:
        super().__init__(migrations)
        self.functions = functions


class StatusReport(list[MigrationStatus]):
    """One row per migration, plus ``functions``: one row per function file (or recorded one)."""

    def __init__(self, migrations: list[MigrationStatus], functions: list[FunctionStatus]) -> None:
        super().__init__(migrations)
        self.functions = functions


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir() / "migrations"
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(path.name, "", "file name must look like NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(directory.name, "", "two migration files share a version number")
    return found


def split_statements(sql: str) -> list[str]:
    """Split on top-level semicolons, respecting quotes, dollar quotes and comments."""
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            buf.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            buf.append(sql[i:end])
            i = end
        elif ch == "'" or ch == '"':
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:
                        end += 2
                        continue
                    break
                end += 1
            buf.append(sql[i : end + 1])
            i = end + 1
        elif ch == "$" and (tag := re.match(r"\$[A-Za-z_]*\$", sql[i:])):
            end = sql.find(tag.group(0), i + len(tag.group(0)))
            end = n if end == -1 else end + len(tag.group(0))
            buf.append(sql[i:end])
            i = end
        elif ch == ";":
            statements.append("".join(buf).strip())
            buf = []
            i += 1
        else:
            buf.append(ch)
            i += 1
    statements.append("".join(buf).strip())

    def has_code(stmt: str) -> bool:
        no_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", stmt, flags=re.DOTALL)
        return bool(no_comments.strip())

    return [s for s in statements if has_code(s)]


def default_functions_dir(directory: Path | None) -> Path | None:
    """``sql/functions`` for the shipped migrations; none for a custom migrations directory."""
    return sql_dir() / "functions" if directory is None else None


def discover_functions(functions_dir: Path | None) -> list[FunctionFile]:
    """The function files in file-name order; none when the directory is missing or empty."""
    if functions_dir is None or not functions_dir.is_dir():
        return []
    return [FunctionFile(path) for path in sorted(functions_dir.glob("*.sql")) if path.is_file()]


def _applied(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    rows = conn.execute(
        "SELECT version, checksum, applied_at::text FROM alert_delivery.schema_migrations"
    ).fetchall()
    return {int(v): (str(c), str(a)) for v, c, a in rows}


def _applied_functions(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "SELECT file, checksum, applied_at::text FROM alert_delivery.schema_functions"
    ).fetchall()
    return {str(f): (str(c), str(a)) for f, c, a in rows}


def _summarise(statement: str) -> str:
    one_line = " ".join(statement.split())
    return one_line if len(one_line) <= 160 else one_line[:157] + "..."


def _check_target(target: int | None, migrations: list[Migration]) -> None:
    if target is None:
        return
    highest = max((m.version for m in migrations), default=0)
    if not 1 <= target <= highest:
        known = f"from 1 to the highest known version {highest}" if highest else "none known"
        raise InvalidInput(f"no migration version {target} (versions: {known})", where="--target")


def upgrade(
    conn: psycopg.Connection,
    directory: Path | None = None,
    *,
    target: int | None = None,
    functions_dir: Path | None = None,
) -> UpgradeResult:
    """Apply pending migrations (up to ``target``), then, at head, the function files.

    Returns the migrations applied (a list) with ``.functions``: the function files applied.
    ``functions_dir`` defaults to ``sql/functions`` when ``directory`` is the shipped one, and to
    no function files for a custom ``directory``. A ``target`` outside 1..highest known version
    raises ``InvalidInput``. Needs autocommit.
    """
    migrations = discover(directory)
    _check_target(target, migrations)
    if functions_dir is None:
        functions_dir = default_functions_dir(directory)
    functions = discover_functions(functions_dir)
    at_head = target is None or target >= max((m.version for m in migrations), default=0)
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(_BOOTSTRAP)
        applied = _applied(conn)
        done: list[Migration] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            if target is not None and migration.version > target:
                break
            _apply_one(conn, migration)
            done.append(migration)
        applied_functions: list[FunctionFile] = []
        if at_head:
            recorded = {f: c for f, (c, _) in _applied_functions(conn).items()}
            wanted = {f.filename: f.checksum for f in functions}
            if recorded != wanted or (done and functions):
                _apply_functions(conn, functions)
                applied_functions = functions
        return UpgradeResult(done, applied_functions)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _apply_one(conn: psycopg.Connection, migration: Migration) -> None:
    statements = split_statements(migration.path.read_text())
    current = ""
    try:
        with conn.transaction():
            for current in statements:
                conn.execute(current.encode())
            conn.execute(
                "INSERT INTO alert_delivery.schema_migrations (version, name, checksum)"
                " VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.Error as exc:
        raise MigrationError(migration.filename, _summarise(current), _cause(exc)) from None


def _apply_functions(conn: psycopg.Connection, functions: list[FunctionFile]) -> None:
    """Every function file in one transaction, then ``schema_functions`` rewritten to match.

    Each file starts from the caller's ``search_path``: a ``SET LOCAL`` in one file does not leak
    into the next. A failure rolls everything back, so the previous bodies stay.
    """
    name, current = "", ""
    try:
        with conn.transaction():
            row = conn.execute("SELECT current_setting('search_path')").fetchone()
            search_path = str(row[0]) if row else ""
            checksums: list[tuple[str, str]] = []
            for function_file in functions:
                name, current = function_file.path.parent.name + "/" + function_file.filename, ""
                # Read once: the checksum recorded is that of the bytes executed.
                data = function_file.path.read_bytes()
                checksums.append((function_file.filename, hashlib.sha256(data).hexdigest()))
                conn.execute("SELECT set_config('search_path', %s, true)", (search_path,))
                for current in split_statements(data.decode()):
                    conn.execute(current.encode())
            name, current = "schema_functions", ""
            conn.execute("SELECT set_config('search_path', %s, true)", (search_path,))
            conn.execute("DELETE FROM alert_delivery.schema_functions")
            for filename, checksum in checksums:
                conn.execute(
                    "INSERT INTO alert_delivery.schema_functions (file, checksum) VALUES (%s, %s)",
                    (filename, checksum),
                )
    except psycopg.Error as exc:
        raise MigrationError(name, _summarise(current), _cause(exc)) from None


def _cause(exc: psycopg.Error) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def status(
    conn: psycopg.Connection, directory: Path | None = None, *, functions_dir: Path | None = None
) -> StatusReport:
    """Each migration (applied or pending) and each function file (applied, changed, pending or
    removed), as a list of ``MigrationStatus`` with ``.functions``."""
    conn.execute(_BOOTSTRAP)
    applied = _applied(conn)
    result = []
    for migration in discover(directory):
        record = applied.get(migration.version)
        result.append(
            MigrationStatus(
                migration=migration,
                applied_at=record[1] if record else None,
                changed_since_applied=bool(record and record[0] != migration.checksum),
            )
        )
    if functions_dir is None:
        functions_dir = default_functions_dir(directory)
    recorded = _applied_functions(conn)
    functions: list[FunctionStatus] = []
    for function_file in discover_functions(functions_dir):
        entry = recorded.pop(function_file.filename, None)
        if entry is None:
            functions.append(FunctionStatus(function_file.filename, "pending", None))
        else:
            state = "applied" if entry[0] == function_file.checksum else "changed"
            functions.append(FunctionStatus(function_file.filename, state, entry[1]))
    for filename, (_, applied_at) in sorted(recorded.items()):
        functions.append(FunctionStatus(filename, "removed", applied_at))
    return StatusReport(result, functions)
