"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.

A ``whsec_`` secret is base64 after the prefix. While a secret rotates the webhook holds several
(space-separated, newest first) and the header carries one signature per secret, space-separated,
so receivers holding either secret verify.
"""

import base64
import hashlib
import hmac
import secrets as _random
from functools import lru_cache

from alert_delivery.errors import InvalidInput

PREFIX = "whsec_"


def generate_secret() -> str:
    return PREFIX + base64.b64encode(_random.token_bytes(24)).decode()


@lru_cache(maxsize=1024)
def secret_bytes(secret: str) -> bytes:
    """The HMAC key: base64-decoded for ``whsec_`` secrets, raw UTF-8 otherwise."""
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret[len(PREFIX) :], validate=True)
        except ValueError:
            raise InvalidInput("not valid base64 after whsec_", where="--secret") from None
    return secret.encode()


def validate_secret(secret: str) -> None:
    if not secret.startswith(PREFIX):
        raise InvalidInput("a signing secret must start with whsec_", where="--secret")
    if len(secret_bytes(secret)) < 16:
        raise InvalidInput("a signing secret needs at least 16 random bytes", where="--secret")


def sign(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    to_sign = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.digest(secret_bytes(secret), to_sign, hashlib.sha256)
    return "v1," + base64.b64encode(digest).decode()


def signature_header(message_id: str, timestamp: int, body: bytes, secrets: list[str]) -> str:
    return " ".join(sign(message_id, timestamp, body, s) for s in secrets)


def split_secrets(stored: str) -> list[str]:
    return [s for s in stored.split() if s]
