"""API tokens: 256 random bits, shown once, stored as their SHA-256 (never the token itself).

A fast hash is enough for tokens of this entropy (nothing to brute-force); lookups compare the
hash of the presented token with every live hash using ``hmac.compare_digest``. The server keeps
the live hashes in memory for a couple of seconds, so a revoked token stops working within that.
"""

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

PREFIX = "adt_"
SCOPES = ("ingest", "read", "admin")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
DEFAULT_RATE_PER_S = 100.0
MAX_RATE_PER_S = 1_000_000.0


@dataclass(frozen=True)
class Token:
    token_id: int
    name: str
    scope: str
    rate_per_s: float

    def allows(self, scope: str) -> bool:
        """admin may do everything; ingest and read only what they are named for."""
        return self.scope == "admin" or self.scope == scope


@dataclass(frozen=True)
class TokenRow:
    token_id: int
    name: str
    scope: str
    rate_per_s: float
    created_at: datetime
    revoked_at: datetime | None


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def ensure_table(conn: psycopg.Connection) -> None:
    row = conn.execute(query("api", "tokens_table_exists")).fetchone()
    if not row or not row[0]:
        raise InvalidInput(
            "the database has no api_tokens table yet: run `alert-delivery db upgrade`",
            where="database",
        )


def add_token(
    conn: psycopg.Connection, name: str, scope: str, *, rate_per_s: float = DEFAULT_RATE_PER_S
) -> str:
    """Create a token; returns it (the only time it exists outside the caller's hands)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput(
            "must be 1-100 characters of letters, digits, '_', '.', '-' (starting with a letter"
            " or digit)",
            where="NAME",
        )
    if scope not in SCOPES:
        raise InvalidInput(f"must be one of {', '.join(SCOPES)}, not {scope!r}", where="--scope")
    if not (0.01 <= rate_per_s <= MAX_RATE_PER_S):  # also refuses NaN
        raise InvalidInput(
            f"must be between 0.01 and {MAX_RATE_PER_S:.0f} requests/s", where="--rate"
        )
    ensure_table(conn)
    with conn.transaction():
        if conn.execute(query("api", "live_token_named"), {"name": name}).fetchone():
            raise InvalidInput(
                f"a live token named {name!r} exists (revoke it first)", where="NAME"
            )
        token = new_token()
        conn.execute(
            query("api", "insert_token"),
            {
                "name": name,
                "scope": scope,
                "token_sha256": token_hash(token),
                "rate_per_s": rate_per_s,
            },
        )
    return token


def list_tokens(conn: psycopg.Connection, *, include_revoked: bool = False) -> list[TokenRow]:
    ensure_table(conn)
    rows = conn.execute(query("api", "list_tokens"), {"all": include_revoked}).fetchall()
    return [TokenRow(*row) for row in rows]


def revoke_token(conn: psycopg.Connection, name: str) -> int:
    ensure_table(conn)
    row = conn.execute(query("api", "revoke_token"), {"name": name}).fetchone()
    if row is None:
        raise InvalidInput(f"no live token named {name!r}", where="NAME")
    return int(row[0])


def load_live(conn: psycopg.Connection) -> list[tuple[str, Token]]:
    return [
        (str(r[3]), Token(int(r[0]), str(r[1]), str(r[2]), float(r[4])))
        for r in conn.execute(query("api", "live_tokens")).fetchall()
    ]


class TokenCache:
    """Live token hashes, reloaded after ``ttl_s`` or on a miss (at most every ``miss_s``)."""

    def __init__(
        self,
        load: Callable[[], Awaitable[list[tuple[str, Token]]]],
        *,
        ttl_s: float = 2.0,
        miss_s: float = 0.2,
    ) -> None:
        self._load = load
        self.ttl_s = ttl_s
        self.miss_s = miss_s
        self._entries: list[tuple[str, Token]] = []
        self._loaded_at = float("-inf")

    async def _refresh(self) -> None:
        self._entries = await self._load()
        self._loaded_at = time.monotonic()

    def _find(self, digest: str) -> Token | None:
        found: Token | None = None
        for stored, token in self._entries:
            if hmac.compare_digest(stored, digest):
                found = token
        return found

    async def authenticate(self, presented: str) -> Token | None:
        digest = token_hash(presented)
        age = time.monotonic() - self._loaded_at
        if age > self.ttl_s:
            await self._refresh()
            return self._find(digest)
        found = self._find(digest)
        if found is None and age > self.miss_s:
            await self._refresh()
            found = self._find(digest)
        return found
