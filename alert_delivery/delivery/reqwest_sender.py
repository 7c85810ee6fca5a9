"""The pyreqwest sender (``ALERT_DELIVERY_HTTP_CLIENT=pyreqwest``): Rust's reqwest, address pinned.

reqwest has no resolver hook Python can fill, so the SSRF guard runs here, before reqwest sees
the request: the host is resolved by the same :class:`GuardedResolver` the aiohttp sender uses
(every address checked, results kept 10 s as aiohttp's connector keeps them), and the request goes
out through a client built for that host and that one checked address (``resolve(host, ip, 0)``),
so the address checked is the address connected to and DNS rebinding has no window. The host
key is the one reqwest itself parsed (pyreqwest's ``Url``: lower-cased, IDNA-encoded, trailing dot
kept): a name that matched no override would be resolved by reqwest's own DNS, unchecked. No
proxy (a proxy resolves the name itself), no redirects, no decompression.

Errors map onto the aiohttp sender's verdicts. pyreqwest reports a response that never came as a
``ConnectTimeoutError`` and a connection closed after the request was written as a
``ConnectError``, so neither says the receiver does not have the request: every timeout is
"timed out" (retry, maybe delivered), and only a failure of the connect step itself (reqwest's
``client error (Connect)``) moves on to the next checked address.
"""

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import NamedTuple

from aiohttp.abc import AbstractResolver
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import ConnectError, PyreqwestError, RequestError, RequestTimeoutError
from pyreqwest.http import Url
from pyreqwest.response import Response

from alert_delivery.config import IPNetwork
from alert_delivery.delivery.outcome import Attempt, Verdict, classify_status, status_error
from alert_delivery.delivery.resolver import ForbiddenAddress, GuardedResolver
from alert_delivery.delivery.retry import parse_retry_after
from alert_delivery.delivery.sender import USER_AGENT, SenderConfig, failed, oversized
from alert_delivery.delivery.ssrf import check_address
from alert_delivery.errors import TargetForbidden

DNS_TTL_S = 10.0
MAX_CLIENTS = 512
"""Clients kept, one per (host, address); past this the oldest is dropped (its pool closes
once its last request is done). Parsed URLs and checked literals are kept up to as many."""
_OS_ERROR = re.compile(r"\s*\(os error \d+\)$")


class Target(NamedTuple):
    """reqwest's parse of a webhook URL."""

    url: Url
    domain: str | None
    """None for an IP literal."""
    host: str
    port: int


class ReqwestSender:
    """Same contract as ``sender.Sender``; create inside a running loop, ``await close()``."""

    def __init__(
        self,
        config: SenderConfig,
        allowed: Sequence[IPNetwork],
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.config = config
        self._allowed = tuple(allowed)
        self._resolver = GuardedResolver(allowed, resolver)
        self._addresses: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._resolving: dict[tuple[str, int], asyncio.Task[list[str]]] = {}
        self._clients: dict[tuple[str, str], Client] = {}
        self._urls: dict[str, Target] = {}
        self._literals: dict[str, str] = {}

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        refused = oversized(body, self.config.body_cap_bytes)
        if refused is not None:
            return refused
        started = time.perf_counter()
        try:
            parsed = self._parse(url)
        except ValueError:
            return failed("connection error: InvalidURL", started)
        try:
            host, addresses = await self._checked(parsed)
        except (ForbiddenAddress, TargetForbidden) as exc:
            return Attempt(Verdict.PERMANENT, error=f"refused at connect time: {exc}")
        except OSError as exc:
            return failed(f"connection failed: {exc.strerror or type(exc).__name__}", started)
        for n, address in enumerate(addresses, 1):
            try:
                client = self._client(host, address)
                return await self._send(client, parsed.url, body, headers, started)
            except RequestTimeoutError:
                return failed("timed out", started)
            except ConnectError as exc:
                if not _connect_step(exc):
                    return failed(f"connection error: {_reason(exc)}", started)
                if n == len(addresses):
                    return failed(f"connection failed: {_reason(exc)}", started)
            except PyreqwestError as exc:
                return failed(f"connection error: {_reason(exc)}", started)
        raise AssertionError("a checked host has at least one address")

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
        await self._resolver.close()

    def _parse(self, url: str) -> Target:
        """reqwest's parse of ``url`` (its domain, host and port), kept per URL string: the
        same few webhook URLs come back on every attempt."""
        parsed = self._urls.get(url)
        if parsed is None:
            u = Url(url)
            parsed = Target(u, u.domain, u.host_str or "", u.port_or_known_default or 0)
            if len(self._urls) >= MAX_CLIENTS:
                self._urls.clear()
            self._urls[url] = parsed
        return parsed

    async def _checked(self, target: Target) -> tuple[str, list[str]]:
        """The host as reqwest will look it up, and its addresses, every one passed by the
        guard. An IP literal is checked here too (aiohttp's sender leaves that to check_url)."""
        _, domain, host, port = target
        if domain is None:
            address = self._literals.get(host)
            if address is None:
                literal = ipaddress.ip_address(host.strip("[]"))
                check_address(literal, self._allowed, host=host)
                address = str(literal)
                if len(self._literals) >= MAX_CLIENTS:
                    self._literals.clear()
                self._literals[host] = address
            return host, [address]
        now = time.monotonic()
        cached = self._addresses.get((domain, port))
        if cached is not None and cached[0] > now:
            return domain, cached[1]
        key = (domain, port)
        task = self._resolving.get(key)
        if task is None:
            # One lookup per host at a time, however many lanes want it (as aiohttp's connector).
            task = asyncio.ensure_future(self._resolve(domain, port))
            self._resolving[key] = task
            task.add_done_callback(lambda _: self._resolving.pop(key, None))
        return domain, await asyncio.shield(task)

    async def _resolve(self, domain: str, port: int) -> list[str]:
        results = await self._resolver.resolve(domain, port, socket.AF_UNSPEC)
        addresses = list(dict.fromkeys(str(r["host"]).split("%")[0] for r in results))
        self._addresses[(domain, port)] = (time.monotonic() + DNS_TTL_S, addresses)
        return addresses

    def _client(self, host: str, address: str) -> Client:
        key = (host, address)
        client = self._clients.get(key)
        if client is not None:
            return client
        builder = (
            ClientBuilder()
            .no_proxy()
            .follow_redirects(False)
            .referer(False)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .connect_timeout(timedelta(seconds=self.config.connect_timeout_s))
            .read_timeout(timedelta(seconds=self.config.read_timeout_s))
            .user_agent(USER_AGENT)
            # Names as the Standard Webhooks spec spells them (webhook-id); pyreqwest would
            # title-case them (Webhook-Id) and cannot keep the case given, as aiohttp does.
            .http1_lower_case_headers()
        )
        if host.strip("[]") != address:
            # Port 0: the URL's port. Certificates are still verified against the host name.
            builder = builder.resolve(host, address, 0)
        client = builder.build()
        if len(self._clients) >= MAX_CLIENTS:
            self._clients.pop(next(iter(self._clients)))
        self._clients[key] = client
        return client

    async def _send(
        self,
        client: Client,
        url: Url,
        body: bytes,
        headers: Mapping[str, str],
        started: float,
    ) -> Attempt:
        request = client.post(url).headers(headers).body_bytes(body).build_streamed()
        async with request as resp:
            await self._read_capped(resp)
            status = resp.status
            retry_after = (
                None if 200 <= status < 300 else parse_retry_after(resp.get_header("Retry-After"))
            )
        return Attempt(
            classify_status(status),
            status=status,
            error=status_error(status),
            retry_after_s=retry_after,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def _read_capped(self, resp: Response) -> None:
        """Read the body up to the cap and no further (one read: pyreqwest fills it up to the
        amount or the end), so a hostile receiver cannot stream us gigabytes."""
        await resp.body_reader.read(self.config.body_cap_bytes)


def _causes(exc: PyreqwestError) -> list[str]:
    if not isinstance(exc, RequestError):
        return []
    return [c["message"] for c in exc.details.get("causes") or []]


def _connect_step(exc: ConnectError) -> bool:
    """Whether the connect step itself failed, so nothing of the request was written."""
    return "client error (Connect)" in _causes(exc)


def _reason(exc: PyreqwestError) -> str:
    """The innermost cause, without the URL reqwest puts in its outermost message."""
    for message in reversed(_causes(exc)):
        if "://" not in message:
            return _OS_ERROR.sub("", message)[:200]
    return type(exc).__name__
