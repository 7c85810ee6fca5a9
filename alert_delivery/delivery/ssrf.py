"""The SSRF guard: which URLs and addresses a delivery may reach.

https only, and never a private, loopback, link-local (cloud metadata), multicast, reserved or
unspecified address — including IPv4-mapped IPv6 and the decimal / hex / octal spellings of IPv4
that ``inet_aton`` accepts. Networks in ``ALERT_DELIVERY_ALLOWED_TARGETS`` are exempt and may use
plain http. Checked at registration, before every attempt, and at connect time by
:class:`GuardedResolver`, which sees the addresses the socket will actually use.
"""

import ipaddress
import re
import socket
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from alert_delivery.config import IPNetwork
from alert_delivery.errors import TargetForbidden

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?)+$", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``scheme://host/…`` at most: paths and queries of webhook URLs are credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<malformed URL>"
    if not parts.scheme or not host:
        return "<malformed URL>"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}/…"


def parse_ip(host: str) -> IPAddress | None:
    """The address a host literal denotes, however it is spelled; None for a DNS name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise TargetForbidden(f"malformed numeric address {host!r}") from None
    return None


def forbidden_reason(addr: IPAddress) -> str | None:
    """Why an address may not be a delivery target, or None when it may."""
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped or addr.sixtofour
        if mapped is not None:
            return forbidden_reason(mapped)
    checks = (
        ("unspecified", addr.is_unspecified),
        ("loopback", addr.is_loopback),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("private", addr.is_private),
        ("reserved", addr.is_reserved),
        ("not globally routable", not addr.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address"
    return None


def is_allowed(addr: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [addr]
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        candidates.append(addr.ipv4_mapped)
    return any(c.version == n.version and c in n for c in candidates for n in allowed)


def check_address(addr: IPAddress, allowed: Sequence[IPNetwork], *, host: str) -> None:
    if is_allowed(addr, allowed):
        return
    reason = forbidden_reason(addr)
    if reason:
        raise TargetForbidden(f"{host} is a {reason}; refused by the SSRF guard")


_announced: set[tuple[IPNetwork, ...]] = set()


def announce_allow_list(allowed: Sequence[IPNetwork]) -> None:
    """Say on stderr, once per process and allow-list, that the guard is relaxed and for what."""
    key = tuple(allowed)
    if key and key not in _announced:
        _announced.add(key)
        nets = ", ".join(str(n) for n in allowed)
        sys.stderr.write(
            f"alert-delivery: WARNING: SSRF allow-list in effect, deliveries may reach {nets} "
            "(ALERT_DELIVERY_ALLOWED_TARGETS)\n"
        )


def check_url(
    url: str,
    allowed: Sequence[IPNetwork],
    *,
    secure: str = "https",
    insecure: str = "http",
    insecure_needs_allow_list: bool = True,
    resolve: bool = False,
    credentials: bool = False,
) -> None:
    """Refuse a URL the guard forbids; ``resolve`` also checks every address DNS returns now.

    Plain http (``insecure``) is accepted only for allow-listed hosts. SMTP passes
    ``insecure_needs_allow_list=False``: mail servers speak STARTTLS on the plain port.
    """
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise TargetForbidden(f"malformed URL {shown}") from None
    if not host:
        raise TargetForbidden(f"URL {shown} has no host")
    # Webhook URLs never carry a login (a receiver authenticates the signature); SMTP AUTH does.
    if (parts.username or parts.password) and not credentials:
        raise TargetForbidden(f"URL {shown} carries credentials in the authority")
    if parts.scheme not in (secure, insecure) or not parts.scheme:
        raise TargetForbidden(f"URL {shown}: scheme must be {secure}")
    literal = parse_ip(host)
    if literal is None and not _HOSTNAME.match(host):
        raise TargetForbidden(f"URL {shown}: malformed host name")
    addresses: list[IPAddress] = [literal] if literal is not None else []
    strict_insecure = parts.scheme == insecure and insecure_needs_allow_list
    if literal is None and (resolve or strict_insecure):
        addresses = resolve_host(host, port or 0)
    for addr in addresses:
        check_address(addr, allowed, host=shown)
    if strict_insecure and not all(is_allowed(a, allowed) for a in addresses):
        raise TargetForbidden(
            f"URL {shown}: plain {insecure} only for ALERT_DELIVERY_ALLOWED_TARGETS; use {secure}"
        )


def needs_dns(url: str) -> bool:
    """Whether ``check_url`` resolves this URL (plain http to a host name), so its verdict
    can change between calls."""
    parts = urlsplit(url)
    return parts.scheme != "https" and parse_ip(parts.hostname or "") is None


def resolve_host(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetForbidden(f"cannot resolve {host}: {exc.strerror or exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
