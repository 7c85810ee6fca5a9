"""What every handler needs: the database, tokens, limits; and the request helpers."""

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from alert_delivery.api.database import Database
from alert_delivery.api.errors import ApiError
from alert_delivery.api.ratelimit import RateLimiter, retry_after_header
from alert_delivery.api.tokens import Token, TokenCache

MAX_DEPTH = 32


@dataclass
class State:
    db: Database
    tokens: TokenCache
    limiter: RateLimiter = field(default_factory=RateLimiter)
    started: float = field(default_factory=time.time)
    max_body: int = 1 << 20


STATE: web.AppKey[State] = web.AppKey("state", State)
TOKEN: web.RequestKey[Token] = web.RequestKey("token", Token)


def state(request: web.Request) -> State:
    return request.app[STATE]


def presented_token(request: web.Request) -> str | None:
    """``Authorization: Bearer <token>``, or basic auth with the token as the password."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


async def authorize(request: web.Request, scope: str, presented: str | None) -> Token:
    """401 for no or an unknown token, 403 for the wrong scope, 429 past its rate."""
    if not presented:
        raise ApiError(
            401,
            "needs Authorization: Bearer <token> (alert-delivery tokens add)",
            headers={"WWW-Authenticate": 'Bearer realm="alert-delivery"'},
        )
    st = state(request)
    token = await st.tokens.authenticate(presented)
    if token is None:
        raise ApiError(
            401,
            "unknown or revoked token",
            headers={"WWW-Authenticate": 'Bearer realm="alert-delivery", error="invalid_token"'},
        )
    if not token.allows(scope):
        raise ApiError(403, f"token {token.name!r} has scope {token.scope}; this needs {scope}")
    wait = st.limiter.take(token.token_id, token.rate_per_s)
    if wait is not None:
        raise ApiError(
            429,
            f"token {token.name!r} is limited to {token.rate_per_s:g} requests/s",
            headers={"Retry-After": retry_after_header(wait)},
        )
    request[TOKEN] = token
    return token


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_strings(value: Any, path: str, depth: int = 0) -> None:
    """PostgreSQL's jsonb holds neither NUL nor lone surrogates: refuse them, naming the path."""
    if depth > MAX_DEPTH:
        raise ApiError(400, f"nested deeper than {MAX_DEPTH} levels", field=path or "body")
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, "must not contain NUL characters", field=path or "body")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "contains a lone surrogate", field=path or "body") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            _check_strings(key, sub, depth + 1)
            _check_strings(item, sub, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_strings(item, f"{path}[{i}]", depth + 1)


async def read_json(request: web.Request, *, root: str = "") -> Any:
    """The body as JSON (413 past the cap, 400 if it is not JSON, names a bad path)."""
    length = request.content_length
    cap = state(request).max_body
    if length is not None and length > cap:
        raise ApiError(413, f"body is {length} bytes; at most {cap}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"body is larger than {cap} bytes") from None
    if not raw.strip():
        raise ApiError(400, "needs a JSON body", field="body")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"not valid JSON: {str(exc)[:200]}", field="body") from None
    _check_strings(value, root)
    return value


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":"), default=str).encode(),
        status=status,
        content_type="application/json",
    )


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with milliseconds and Z, as Alertmanager's clients parse it."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
