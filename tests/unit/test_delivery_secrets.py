"""Encryption at rest: MultiFernet rotation, the development key file, production refusal."""

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from alert_delivery.config import load_settings
from alert_delivery.delivery.secrets import Vault, configured_keys, key_file, load_vault
from alert_delivery.errors import ConfigurationError


def test_first_key_encrypts_all_decrypt_and_rotate_moves_to_the_first() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Vault((old,)).encrypt("https://example.com/secret")
    both = Vault((new, old))
    assert both.decrypt(token) == "https://example.com/secret"
    rotated = both.rotate(token)
    assert Vault((new,)).decrypt(rotated) == "https://example.com/secret"
    with pytest.raises(ConfigurationError, match="none of the configured keys"):
        Vault((new,)).decrypt(token)


def test_development_generates_a_0600_key_file_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings({"ALERT_DELIVERY_HOME": str(tmp_path)})
    keys = configured_keys(settings)
    path = key_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in capsys.readouterr().err
    assert configured_keys(settings) == keys, "the same key on the next start"
    assert keys[0] not in capsys.readouterr().err


def test_production_refuses_to_start_without_keys(tmp_path: Path) -> None:
    settings = load_settings(
        {"ALERT_DELIVERY_HOME": str(tmp_path), "ALERT_DELIVERY_ENV": "production"}
    )
    with pytest.raises(ConfigurationError, match="ALERT_DELIVERY_SECRET_KEYS"):
        load_vault(settings)
    assert not key_file(settings).exists()


def test_malformed_key_is_named_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as err:
        Vault(("not-a-key-but-secretish",))
    assert "key #1" in str(err.value) and "secretish" not in str(err.value)
