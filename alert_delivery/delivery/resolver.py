"""Connect-time SSRF guard: aiohttp asks this resolver for the addresses it will connect to.

Checking here rather than only before the request closes the DNS-rebinding window: the address
that is checked is the address the socket uses. (aiohttp does not consult a resolver for IP
literals; those are checked before every attempt by ``ssrf.check_url``.)
"""

import ipaddress
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from alert_delivery.config import IPNetwork
from alert_delivery.delivery.ssrf import check_address
from alert_delivery.errors import TargetForbidden


class ForbiddenAddress(OSError):
    """Raised from the resolver: aiohttp wraps only OSError into ``ClientConnectorDNSError``."""


class GuardedResolver(AbstractResolver):
    """Resolve with ``inner`` (default: the system resolver) and refuse forbidden addresses."""

    def __init__(self, allowed: Sequence[IPNetwork], inner: AbstractResolver | None = None) -> None:
        self._allowed = tuple(allowed)
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            addr = ipaddress.ip_address(result["host"].split("%")[0])
            try:
                check_address(addr, self._allowed, host=host)
            except TargetForbidden as exc:
                raise ForbiddenAddress(str(exc)) from None
        if not results:
            raise ForbiddenAddress(f"{host} resolved to no address")
        return results

    async def close(self) -> None:
        await self._inner.close()
