"""Connections: one place that resolves the URL and turns driver errors into our own."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import conninfo

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.embedded import ensure_embedded
from alert_delivery.errors import DatabaseUnavailable


def resolve_database_url(settings: Settings | None = None) -> str:
    """The configured URL, or the embedded server's (started or joined on demand)."""
    settings = settings or load_settings()
    if settings.database_url:
        return settings.database_url
    return ensure_embedded(settings.home)


def describe_host(url: str) -> str:
    """``host:port/dbname`` of a URL for messages: never the user, password or options."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<malformed URL>"
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    port = parts.get("port")
    dbname = parts.get("dbname")
    where = f"{host}:{port}" if port else host
    return f"{where}/{dbname}" if dbname else where


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# Connection exceptions (08), and the server shutting down, crashing or still starting (57P0x):
# the query was fine, the server was not there. Other OperationalErrors (a cancelled statement,
# a lock timeout, a full disk) are about the statement and stay what they are.
_LOST_STATES = ("57P01", "57P02", "57P03")


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the server went away (as opposed to a statement failing)."""
    if isinstance(exc, DatabaseUnavailable | psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    # No SQLSTATE: libpq's own "server closed the connection unexpectedly" and kin.
    return state is None or state.startswith("08") or state in _LOST_STATES


def unavailable(url: str, exc: BaseException) -> DatabaseUnavailable:
    """The one-line error for a lost or refused connection: host and cause, never credentials."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    return DatabaseUnavailable(describe_host(url), _first_line(exc))


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Inside: the server going away raises ``DatabaseUnavailable`` instead of the driver's error.

    The one place driver connection errors become ours, for the Dagster steps and the worker.
    """
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        if not connection_lost(exc):
            raise
        raise unavailable(url, exc) from None


def connect(url: str, *, autocommit: bool = False, connect_timeout: int = 5) -> psycopg.Connection:
    """Open a connection or raise ``DatabaseUnavailable`` naming the host and the cause."""
    try:
        conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise DatabaseUnavailable("<malformed URL>", _first_line(exc)) from None
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=connect_timeout)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(describe_host(url), _first_line(exc)) from None


@contextmanager
def transaction(url: str | None = None) -> Iterator[psycopg.Connection]:
    """A connection that commits on success, rolls back on error and always closes."""
    url = url or resolve_database_url()
    with database_errors(url):
        conn = connect(url)
        try:
            with conn.transaction():
                yield conn
        finally:
            conn.close()


async def connect_async(url: str, *, connect_timeout: int = 5) -> psycopg.AsyncConnection[Any]:
    """An autocommit async connection, or ``DatabaseUnavailable`` naming host and cause."""
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=connect_timeout
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(describe_host(url), _first_line(exc)) from None


def with_dbname(url: str, dbname: str) -> str:
    """The same server, another database."""
    return conninfo.make_conninfo(url, dbname=dbname)
