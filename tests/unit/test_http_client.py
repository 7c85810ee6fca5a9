"""Choosing the HTTP client: a missing optional one is a one-line configuration error."""

import sys

import pytest

from alert_delivery.delivery.http_client import open_sender
from alert_delivery.delivery.sender import SenderConfig
from alert_delivery.errors import ConfigurationError


def test_pyreqwest_not_installed_names_the_setting_and_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if it were not installed, also after other tests imported it (restored afterwards).
    for name in [m for m in sys.modules if m.startswith("pyreqwest.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyreqwest", None)
    monkeypatch.delitem(sys.modules, "alert_delivery.delivery.reqwest_sender", raising=False)
    with pytest.raises(ConfigurationError, match=r"ALERT_DELIVERY_HTTP_CLIENT: .*\[pyreqwest\]"):
        open_sender("pyreqwest", SenderConfig(), ())
