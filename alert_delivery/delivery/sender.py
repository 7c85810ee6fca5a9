"""HTTP sender: one aiohttp session per process, pooled, SSRF-guarded at connect time.

Redirects are never followed (a 3xx is a failure), timeouts are explicit, the response body is
read only up to the cap so a hostile receiver cannot stream us gigabytes.
"""

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from alert_delivery.config import IPNetwork
from alert_delivery.delivery.outcome import Attempt, Verdict, classify_status, status_error
from alert_delivery.delivery.resolver import ForbiddenAddress, GuardedResolver
from alert_delivery.delivery.retry import parse_retry_after

USER_AGENT = "alert-delivery/0.1 (+https://www.standardwebhooks.com)"


@dataclass(frozen=True)
class SenderConfig:
    concurrency: int = 50
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    body_cap_bytes: int = 256 * 1024


class Sender:
    """Owns the session; create inside a running event loop, ``await close()`` when done."""

    def __init__(
        self,
        config: SenderConfig,
        allowed: Sequence[IPNetwork],
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        self.config = config
        connector = aiohttp.TCPConnector(
            limit=config.concurrency,
            limit_per_host=0,
            resolver=GuardedResolver(allowed, resolver),
            ttl_dns_cache=10,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=config.connect_timeout_s,
                sock_read=config.read_timeout_s,
            ),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        refused = oversized(body, self.config.body_cap_bytes)
        if refused is not None:
            return refused
        started = time.perf_counter()
        try:
            async with self.session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                await resp.content.read(self.config.body_cap_bytes)
                status = resp.status
                retry_after = (
                    None
                    if 200 <= status < 300
                    else parse_retry_after(resp.headers.get("Retry-After"))
                )
        except TimeoutError:
            return failed("timed out", started)
        except aiohttp.ClientConnectorError as exc:
            return _connect_failed(exc, started)
        except (aiohttp.ClientError, OSError) as exc:
            return failed(f"connection error: {type(exc).__name__}", started)
        latency = (time.perf_counter() - started) * 1000.0
        return Attempt(
            classify_status(status),
            status=status,
            error=status_error(status),
            retry_after_s=retry_after,
            latency_ms=latency,
        )

    async def close(self) -> None:
        await self.session.close()


def oversized(body: bytes, cap: int) -> Attempt | None:
    """A request body over the cap is final: it is never sent."""
    if len(body) <= cap:
        return None
    return Attempt(
        Verdict.PERMANENT, error=f"payload of {len(body)} bytes exceeds the cap of {cap}"
    )


def failed(error: str, started: float) -> Attempt:
    """A retryable failure (a timeout too: the receiver may have the request)."""
    return Attempt(Verdict.RETRY, error=error, latency_ms=(time.perf_counter() - started) * 1000.0)


def _connect_failed(exc: aiohttp.ClientConnectorError, started: float) -> Attempt:
    cause = exc.os_error
    if isinstance(cause, ForbiddenAddress):
        # The resolver refused every address: retrying cannot help.
        return Attempt(Verdict.PERMANENT, error=f"refused at connect time: {cause}")
    if isinstance(cause, asyncio.TimeoutError):
        return failed("connect timed out", started)
    # The errno's text, not the exception's: asyncio's strerror names the address and port.
    code = getattr(cause, "errno", None)
    reason = os.strerror(code) if isinstance(code, int) else type(cause).__name__
    return failed(f"connection failed: {reason}", started)
