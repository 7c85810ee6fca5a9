"""Resources shared by every domain's assets, jobs and sensors."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from alert_delivery.config import load_settings
from alert_delivery.db.connection import connect, database_errors, resolve_database_url


class PostgresResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The alert-delivery database.

    ``database_url`` empty means: ``ALERT_DELIVERY_DATABASE_URL`` at use time, or the embedded
    server when that is unset too. The URL is never logged.
    """

    database_url: str = ""

    def url(self) -> str:
        return self.database_url or resolve_database_url(load_settings())

    @contextmanager
    def guarded_url(self) -> Iterator[str]:
        """The URL for code that opens its own connections (the delivery engine, the DLQ): a
        server that goes away inside fails the step with the one-line ``DatabaseUnavailable``."""
        url = self.url()
        with database_errors(url):
            yield url

    @contextmanager
    def get_connection(self) -> Iterator[psycopg.Connection]:
        """Commit on success, roll back on error, always close.

        A server that goes away mid-step fails the step with the one-line ``DatabaseUnavailable``.
        """
        url = self.url()
        with database_errors(url):
            conn = connect(url)
            try:
                with conn.transaction():
                    yield conn
            finally:
                conn.close()


defs = dg.Definitions(resources={"postgres": PostgresResource()})
