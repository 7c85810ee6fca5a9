"""Settings are read when asked for, with clear errors for malformed values."""

import ipaddress
from pathlib import Path

import pytest

from alert_delivery.config import load_settings
from alert_delivery.errors import ConfigurationError


def test_defaults_are_project_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.home == tmp_path / ".alert_delivery"
    assert settings.pgdata == tmp_path / ".alert_delivery" / "pgdata"
    assert settings.dagster_home == tmp_path / ".alert_delivery" / "dagster_home"
    assert settings.database_url is None
    assert settings.env == "development"
    assert settings.secret_keys == ()
    assert settings.allowed_targets == ()


def test_values_from_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ALERT_DELIVERY_HOME": str(tmp_path),
            "ALERT_DELIVERY_DATABASE_URL": "postgresql://db.example/alerts",
            "DAGSTER_HOME": str(tmp_path / "dh"),
            "ALERT_DELIVERY_SECRET_KEYS": " k1 , k2 ,",
            "ALERT_DELIVERY_ENV": "production",
            "ALERT_DELIVERY_ALLOWED_TARGETS": "127.0.0.1/32, ::1",
        }
    )
    assert settings.database_url == "postgresql://db.example/alerts"
    assert settings.dagster_home == tmp_path / "dh"
    assert settings.secret_keys == ("k1", "k2")
    assert settings.is_production
    assert settings.allowed_targets == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_unknown_environment_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="ALERT_DELIVERY_ENV: must be 'development'"):
        load_settings({"ALERT_DELIVERY_ENV": "staging"})


def test_bad_cidr_names_the_variable_and_value() -> None:
    with pytest.raises(
        ConfigurationError, match=r"ALERT_DELIVERY_ALLOWED_TARGETS: not a CIDR: '10\.0\.0\.300'"
    ):
        load_settings({"ALERT_DELIVERY_ALLOWED_TARGETS": "127.0.0.1/32,10.0.0.300"})


def test_http_client_defaults_to_aiohttp_and_names_the_variable_when_unknown() -> None:
    assert load_settings({}).http_client == "aiohttp"
    assert load_settings({"ALERT_DELIVERY_HTTP_CLIENT": " pyreqwest "}).http_client == "pyreqwest"
    with pytest.raises(ConfigurationError, match="ALERT_DELIVERY_HTTP_CLIENT: must be 'aiohttp'"):
        load_settings({"ALERT_DELIVERY_HTTP_CLIENT": "httpx"})
