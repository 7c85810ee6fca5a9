"""The one interface the engine sends through, and the setting that picks its implementation.

``aiohttp`` (``sender.Sender``) is the default. ``pyreqwest`` (``reqwest_sender.ReqwestSender``,
Rust's reqwest) is optional: ``pip install 'alert-delivery[pyreqwest]'`` and
``ALERT_DELIVERY_HTTP_CLIENT=pyreqwest``. Both keep the same contract: the SSRF guard checks
the address the socket connects to, redirects are never followed, the response body is read up to
the cap, connect and read timeouts are explicit, and every failure maps onto the same
:class:`Attempt` verdicts (a timeout is a retry: the receiver may have the request).
"""

from collections.abc import Mapping, Sequence
from typing import Protocol

from aiohttp.abc import AbstractResolver

from alert_delivery.config import HttpClient, IPNetwork
from alert_delivery.delivery.outcome import Attempt
from alert_delivery.delivery.sender import Sender, SenderConfig
from alert_delivery.errors import ConfigurationError


class HttpSender(Protocol):
    """Create inside a running event loop; ``await close()`` when done."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        """One attempt; never raises for anything the network or the receiver does."""
        ...

    async def close(self) -> None: ...


def open_sender(
    client: HttpClient,
    config: SenderConfig,
    allowed: Sequence[IPNetwork],
    resolver: AbstractResolver | None = None,
) -> HttpSender:
    """The sender ``client`` names. ``resolver`` replaces the system DNS under the SSRF guard
    (tests); both implementations resolve through the same ``GuardedResolver``."""
    if client == "pyreqwest":
        try:
            from alert_delivery.delivery.reqwest_sender import ReqwestSender
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("pyreqwest"):
                raise
            raise ConfigurationError(
                "pyreqwest is not installed (pip install 'alert-delivery[pyreqwest]')",
                where="ALERT_DELIVERY_HTTP_CLIENT",
            ) from None
        return ReqwestSender(config, allowed, resolver)
    return Sender(config, allowed, resolver)
