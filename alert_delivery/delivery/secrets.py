"""Encryption at rest for webhook URLs and secrets: MultiFernet, the first key encrypts.

Keys come from ``ALERT_DELIVERY_SECRET_KEYS``. In development with no keys a key file (mode 0600)
is generated under ``settings.home`` and its path is said on stderr once; production refuses to
run without keys rather than invent one nobody can recover.
"""

import hashlib
import os
import sys
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from alert_delivery.config import Settings, load_settings
from alert_delivery.errors import ConfigurationError

KEY_FILE_NAME = "secret.key"


def key_file(settings: Settings) -> Path:
    return settings.home / KEY_FILE_NAME


def _dev_keys(settings: Settings) -> tuple[str, ...]:
    path = key_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode() + "\n")
        sys.stderr.write(
            f"alert-delivery: generated a development encryption key at {path} "
            "(set ALERT_DELIVERY_SECRET_KEYS in production)\n"
        )
    keys = tuple(k.strip() for k in path.read_text().replace(",", "\n").split() if k.strip())
    if not keys:
        raise ConfigurationError("key file is empty", where=str(path))
    return keys


def configured_keys(settings: Settings | None = None) -> tuple[str, ...]:
    settings = settings or load_settings()
    if settings.secret_keys:
        return settings.secret_keys
    if settings.is_production:
        raise ConfigurationError(
            "no encryption keys: production refuses to start without them",
            where="ALERT_DELIVERY_SECRET_KEYS",
        )
    return _dev_keys(settings)


def key_id(key: str) -> str:
    """A short public fingerprint of a key: says which key encrypted a row, reveals nothing."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Vault:
    """Encrypt with the first key, decrypt with any; rotate re-encrypts under the first."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        fernets: list[Fernet] = []
        for i, key in enumerate(keys):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                raise ConfigurationError(
                    f"key #{i + 1} is not a Fernet key (32 url-safe base64 bytes)",
                    where="ALERT_DELIVERY_SECRET_KEYS",
                ) from None
        if not fernets:
            raise ConfigurationError("no keys", where="ALERT_DELIVERY_SECRET_KEYS")
        self._multi = MultiFernet(fernets)
        self.primary_key_id = key_id(keys[0])

    def encrypt(self, plain: str) -> str:
        return self._multi.encrypt(plain.encode()).decode()

    def decrypt(self, token: str, *, what: str = "secret") -> str:
        try:
            return self._multi.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                f"cannot decrypt a stored {what}: none of the configured keys fits "
                "(was a key removed before `alert-delivery keys rotate`?)",
                where="ALERT_DELIVERY_SECRET_KEYS",
            ) from None

    def rotate(self, token: str) -> str:
        try:
            return self._multi.rotate(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "cannot re-encrypt a stored value: none of the configured keys fits",
                where="ALERT_DELIVERY_SECRET_KEYS",
            ) from None


def load_vault(settings: Settings | None = None) -> Vault:
    return Vault(configured_keys(settings))
