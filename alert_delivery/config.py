"""Settings from the environment, read when called, never at import time."""

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, cast, get_args

from alert_delivery.errors import ConfigurationError

Environment = Literal["development", "production"]
HttpClient = Literal["aiohttp", "pyreqwest"]
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
    partitions_start: datetime | None = None
    """``ALERT_DELIVERY_PARTITIONS_START``: first hour of the hourly (and daily) partitions, an
    ISO date or hour in UTC; ``None`` means 7 days before the start of the current UTC day,
    computed when the Dagster definitions load (see ``partitions_start_at``)."""
    historical_horizon_s: float = 7200.0
    """``ALERT_DELIVERY_HISTORICAL_HORIZON``: seconds; alerts of detection hours that ended longer
    ago than this (a backfill) are historical: recorded, summarised in one digest alert."""
    log_retention_days: int = 30
    """``ALERT_DELIVERY_LOG_RETENTION_DAYS``: whole days of ``delivery_log`` kept (1-3650); the
    daily ``log_partitions`` schedule drops the daily partitions older than this. Counters
    (``delivery_counters``) are lifetime and unaffected."""
    http_client: HttpClient = "aiohttp"
    """``ALERT_DELIVERY_HTTP_CLIENT``: which client sends webhooks (``delivery/http_client.py``);
    ``pyreqwest`` needs the ``pyreqwest`` extra."""

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def _one_of(value: str, choices: tuple[str, ...], where: str) -> str:
    if value in choices:
        return value
    allowed = " or ".join(repr(c) for c in choices)
    raise ConfigurationError(f"must be {allowed}, got {value[:40]!r}", where=where)


def _parse_env(value: str) -> Environment:
    return cast(Environment, _one_of(value, get_args(Environment), "ALERT_DELIVERY_ENV"))


def _parse_http_client(value: str) -> HttpClient:
    return cast(HttpClient, _one_of(value, get_args(HttpClient), "ALERT_DELIVERY_HTTP_CLIENT"))


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
        partitions_start=_parse_start(env.get("ALERT_DELIVERY_PARTITIONS_START", "")),
        historical_horizon_s=env_number(
            env, "ALERT_DELIVERY_HISTORICAL_HORIZON", 7200.0, low=0.0, high=366 * 86400.0
        ),
        log_retention_days=int(
            env_number(env, "ALERT_DELIVERY_LOG_RETENTION_DAYS", 30, low=1, high=3650, integer=True)
        ),
        http_client=_parse_http_client(
            env.get("ALERT_DELIVERY_HTTP_CLIENT", "").strip() or "aiohttp"
        ),
    )


DEFAULT_PARTITION_LOOKBACK = timedelta(days=7)


def partitions_start_at(settings: Settings, now: datetime) -> datetime:
    """The first partition hour: the setting, or 7 days before the start of ``now``'s UTC day
    (whole days, so every process that loads the definitions on one day agrees)."""
    if settings.partitions_start is not None:
        return settings.partitions_start
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - DEFAULT_PARTITION_LOOKBACK


def _parse_start(value: str) -> datetime | None:
    text = value.strip()
    if not text:
        return None
    where = "ALERT_DELIVERY_PARTITIONS_START"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"not an ISO date or hour (e.g. 2026-11-24 or 2026-11-24T06:00Z): {text[:40]!r}",
            where=where,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if parsed != parsed.replace(minute=0, second=0, microsecond=0):
        raise ConfigurationError(f"must fall on a whole hour, got {text[:40]!r}", where=where)
    if parsed.year < 2000:
        raise ConfigurationError(f"before 2000: {text[:40]!r}", where=where)
    return parsed


def env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    low: float,
    high: float,
    integer: bool = False,
    low_inclusive: bool = True,
) -> float:
    """A finite number from ``env[name]`` within [low, high] (or (low, high]); ``default`` when
    unset or empty. NaN and infinities are refused: they pass naive range checks."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"not {kind}: {text[:40]!r}", where=name) from None
    below = value < low if low_inclusive else value <= low
    if not math.isfinite(value) or below or value > high:
        bracket = "[" if low_inclusive else "("
        raise ConfigurationError(
            f"must be a finite number in {bracket}{low:g}, {high:g}], got {text[:40]!r}",
            where=name,
        )
    return value


def _parse_runbook_url(value: str) -> str:
    base = value.strip().rstrip("/")
    if base and not base.startswith("https://"):
        raise ConfigurationError(
            f"must be an https:// URL, got {base[:80]!r}", where="ALERT_DELIVERY_RUNBOOK_URL"
        )
    return base
