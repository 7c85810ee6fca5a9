"""One exception tree for the whole package.

Everything a user can cause derives from ``AlertDeliveryError``; the CLI prints ``str(exc)`` as one
line and exits 2. Messages never carry a webhook URL, a secret or a key.
"""


class AlertDeliveryError(Exception):
    """Base class for every error this package raises on purpose."""


class InvalidInput(AlertDeliveryError):
    """Something a user supplied (a row, a rule, a URL, a key, a flag) is wrong.

    ``where`` names the place (file:line, field, option) so the message can say it.
    """

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ConfigurationError(InvalidInput):
    """An environment variable or configuration file is missing or malformed."""


class DatabaseUnavailable(AlertDeliveryError):
    """The database cannot be reached or refused the connection."""

    def __init__(self, host: str, cause: str) -> None:
        self.host = host
        self.cause = cause
        super().__init__(f"cannot connect to PostgreSQL at {host}: {cause}")


class EmbeddedServerError(AlertDeliveryError):
    """The embedded PostgreSQL data directory is unusable; the message says what to remove."""


class MigrationError(AlertDeliveryError):
    """A migration failed; the schema stays at the previous version."""

    def __init__(self, filename: str, statement: str, cause: str) -> None:
        self.filename = filename
        self.statement = statement
        self.cause = cause
        super().__init__(f"migration {filename} failed at statement: {statement!r}: {cause}")


class DeliveryError(AlertDeliveryError):
    """Base for the outcome of one delivery attempt that did not succeed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class RetryableDeliveryError(DeliveryError):
    """408, 429, 5xx, timeouts, connection errors: try again later.

    ``retry_after`` carries the receiver's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status)


class PermanentDeliveryError(DeliveryError):
    """3xx and 4xx other than 408/410/429: retrying will not help."""


class EndpointGone(PermanentDeliveryError):
    """410 Gone: the receiver asks us to stop; the webhook is disabled."""


class TargetForbidden(InvalidInput):
    """The SSRF guard refused a target address or scheme."""
