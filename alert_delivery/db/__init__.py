"""Database access: the embedded server, connections, migrations and named queries."""

from alert_delivery.db.connection import connect, resolve_database_url, transaction
from alert_delivery.db.queries import query

__all__ = ["connect", "query", "resolve_database_url", "transaction"]
