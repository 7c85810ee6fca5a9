"""One place that turns the pipeline's SQL errors into ``InvalidInput`` naming the field."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors

from alert_delivery.errors import InvalidInput

# Raised on purpose by sql/migrations/0003_alerting.sql with the field in the error's COLUMN.
_USER_ERRORS = (
    errors.InvalidParameterValue,
    errors.NoDataFound,
    errors.ObjectNotInPrerequisiteState,
    errors.CheckViolation,
    errors.InvalidDatetimeFormat,
    errors.InvalidTextRepresentation,
    errors.NumericValueOutOfRange,
)


def _first_line(exc: psycopg.Error) -> str:
    primary = exc.diag.message_primary or str(exc)
    return (primary.strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def user_errors(where: str | None = None) -> Iterator[None]:
    """Re-raise the SQL errors a caller's input causes as ``InvalidInput``."""
    try:
        yield
    except _USER_ERRORS as exc:
        field = exc.diag.column_name or where
        raise InvalidInput(_first_line(exc), where=field) from None
