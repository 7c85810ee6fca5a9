"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.

A ``whsec_`` secret is base64 after the prefix. While a secret rotates the webhook holds several
(space-separated, newest first) and the header carries one signature per secret, space-separated,
so receivers holding either secret verify.
"""

import base64
import binascii
import hmac
import secrets as _random
import time
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
    # stdlib HMAC: 1.9 us per signature against 1.3 us for hand-kept pad states (timeit), about
    # 0.3 % of the CPU one delivery costs, so no hand-rolled HMAC.
    mac = hmac.digest(secret_bytes(secret), f"{message_id}.{timestamp}.".encode() + body, "sha256")
    return "v1," + binascii.b2a_base64(mac, newline=False).decode()


def signature_header(message_id: str, timestamp: int, body: bytes, secrets: list[str]) -> str:
    if len(secrets) == 1:
        return sign(message_id, timestamp, body, secrets[0])
    return " ".join(sign(message_id, timestamp, body, s) for s in secrets)


def webhook_headers(message_id: str, body: bytes, secrets: list[str]) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, timestamped and signed now."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if secrets:
        headers["webhook-signature"] = signature_header(message_id, timestamp, body, secrets)
    return headers


def split_secrets(stored: str) -> list[str]:
    return [s for s in stored.split() if s]
