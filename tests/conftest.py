"""Fixtures on a real PostgreSQL.

The embedded server (one per test session, under ``.alert_delivery/test``) unless
``TEST_DATABASE_URL`` names a server. Migrations run once into a template database; each test that
asks for ``db_url`` gets a fresh copy of it, dropped afterwards.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from alert_delivery.db.connection import with_dbname
from alert_delivery.db.embedded import ensure_embedded
from alert_delivery.db.migrations import upgrade

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The maintenance database of the server the tests use."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return ensure_embedded(ROOT / ".alert_delivery" / "test")


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    name = f"ad_template_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    with psycopg.connect(with_dbname(pg_server_url, name), autocommit=True) as conn:
        upgrade(conn)
    yield name
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def create_database(server_url: str, template: str | None = None) -> str:
    name = f"ad_test_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{clause}'.encode())
    return name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture
def empty_db_url(pg_server_url: str) -> Iterator[str]:
    """A brand-new database with no migrations applied."""
    name = create_database(pg_server_url)
    yield with_dbname(pg_server_url, name)
    drop_database(pg_server_url, name)


@pytest.fixture
def db_url(
    pg_server_url: str, template_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """A fresh, fully migrated database; the process environment points at it."""
    name = create_database(pg_server_url, template_db)
    url = with_dbname(pg_server_url, name)
    monkeypatch.setenv("ALERT_DELIVERY_DATABASE_URL", url)
    monkeypatch.setenv("ALERT_DELIVERY_HOME", str(tmp_path / "home"))
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection
