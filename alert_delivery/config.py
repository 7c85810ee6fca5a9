"""Settings from the environment, read when called, never at import time."""

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alert_delivery.errors import ConfigurationError

Environment = Literal["development", "production"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    """Everything the process needs to know about where it runs."""

    home: Path
    """Project-local state: embedded data dir, dev key file, Dagster home (``.alert_delivery``)."""
    database_url: str | None
    """``ALERT_DELIVERY_DATABASE_URL``; ``None`` means start (or join) the embedded server."""
    dagster_home: Path
    secret_keys: tuple[str, ...]
    """``ALERT_DELIVERY_SECRET_KEYS``: comma-separated Fernet keys, the first one encrypts."""
    env: Environment
    allowed_targets: tuple[IPNetwork, ...]
    """``ALERT_DELIVERY_ALLOWED_TARGETS``: CIDRs exempt from the SSRF guard (http allowed too)."""
    runbook_url: str = ""
    """``ALERT_DELIVERY_RUNBOOK_URL``: https base under which ``docs/runbooks/`` is hosted; empty
    means alerts name the page in the repository (``docs/runbooks/<page>.md``) without a link."""

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def _parse_env(value: str) -> Environment:
    if value == "development":
        return "development"
    if value == "production":
        return "production"
    raise ConfigurationError(
        f"must be 'development' or 'production', got {value!r}", where="ALERT_DELIVERY_ENV"
    )


def parse_networks(value: str, *, where: str) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigurationError(f"not a CIDR: {item!r} ({exc})", where=where) from None
    return tuple(networks)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("ALERT_DELIVERY_HOME") or Path.cwd() / ".alert_delivery").absolute()
    database_url = env.get("ALERT_DELIVERY_DATABASE_URL") or None
    dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster_home").absolute()
    keys = tuple(
        k.strip() for k in env.get("ALERT_DELIVERY_SECRET_KEYS", "").split(",") if k.strip()
    )
    return Settings(
        home=home,
        database_url=database_url,
        dagster_home=dagster_home,
        secret_keys=keys,
        env=_parse_env(env.get("ALERT_DELIVERY_ENV", "development") or "development"),
        allowed_targets=parse_networks(
            env.get("ALERT_DELIVERY_ALLOWED_TARGETS", ""), where="ALERT_DELIVERY_ALLOWED_TARGETS"
        ),
        runbook_url=_parse_runbook_url(env.get("ALERT_DELIVERY_RUNBOOK_URL", "")),
    )


def _parse_runbook_url(value: str) -> str:
    base = value.strip().rstrip("/")
    if base and not base.startswith("https://"):
        raise ConfigurationError(
            f"must be an https:// URL, got {base[:80]!r}", where="ALERT_DELIVERY_RUNBOOK_URL"
        )
    return base
