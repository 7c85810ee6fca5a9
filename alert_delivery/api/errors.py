"""HTTP errors with a JSON body; the middleware in ``app`` renders them."""

from collections.abc import Mapping


class ApiError(Exception):
    """An answer other than 2xx: status, a message and, for client input, the field path."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        super().__init__(f"{field}: {message}" if field else message)
