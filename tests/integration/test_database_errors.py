"""A server that goes away mid-step is the one-line DatabaseUnavailable; other errors stay."""

import psycopg
import pytest

from alert_delivery.db.connection import connection_lost, database_errors, transaction
from alert_delivery.defs.resources import PostgresResource
from alert_delivery.errors import DatabaseUnavailable
from alert_delivery.worker import RECONNECT_CAP_S, reconnect_delay


def test_a_terminated_session_fails_the_step_with_one_line(db_url: str) -> None:
    postgres = PostgresResource(database_url=db_url)
    with pytest.raises(DatabaseUnavailable) as info, postgres.get_connection() as conn:
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    message = str(info.value)
    assert message.startswith("cannot connect to PostgreSQL at ") and "\n" not in message
    assert "password" not in message


def test_code_with_its_own_connections_is_guarded_too(db_url: str) -> None:
    postgres = PostgresResource(database_url=db_url)
    with (
        pytest.raises(DatabaseUnavailable),
        postgres.guarded_url() as url,
        psycopg.connect(url) as conn,
    ):
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def test_statement_errors_are_not_connection_losses(db_url: str) -> None:
    with pytest.raises(psycopg.errors.QueryCanceled), transaction(db_url) as conn:
        conn.execute("SET LOCAL statement_timeout = 1")
        conn.execute("SELECT pg_sleep(1)")
    with (
        pytest.raises(psycopg.errors.UndefinedTable),
        database_errors(db_url),
        psycopg.connect(db_url) as conn,
    ):
        conn.execute("SELECT * FROM no_such_table")
    assert not connection_lost(psycopg.errors.QueryCanceled())
    assert connection_lost(psycopg.OperationalError("server closed the connection unexpectedly"))


@pytest.mark.parametrize("failures", [0, 1, 2, 5, 10, 1000])
def test_reconnect_backoff_is_capped_and_jittered(failures: int) -> None:
    low, high = reconnect_delay(failures, 0.0), reconnect_delay(failures, 0.999)
    assert 0 < low < high <= RECONNECT_CAP_S
    assert low >= high / 2 - 1e-9
