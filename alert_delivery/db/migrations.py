"""Ordered SQL migrations: ``sql/migrations/NNNN_name.sql``, each in its own transaction.

Runs under a session advisory lock so concurrent processes (daemon, webserver, workers) never
apply the same file twice. Each applied file is recorded with its checksum.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from alert_delivery.db.queries import sql_dir
from alert_delivery.errors import MigrationError

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


def _applied(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    rows = conn.execute(
        "SELECT version, checksum, applied_at::text FROM alert_delivery.schema_migrations"
    ).fetchall()
    return {int(v): (str(c), str(a)) for v, c, a in rows}


def _summarise(statement: str) -> str:
    one_line = " ".join(statement.split())
    return one_line if len(one_line) <= 160 else one_line[:157] + "..."


def upgrade(
    conn: psycopg.Connection, directory: Path | None = None, *, target: int | None = None
) -> list[Migration]:
    """Apply pending migrations (up to ``target``); return the ones applied. Needs autocommit."""
    migrations = discover(directory)
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
        return done
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
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MigrationError(migration.filename, _summarise(current), cause) from None


def status(conn: psycopg.Connection, directory: Path | None = None) -> list[MigrationStatus]:
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
    return result
