"""The SSRF guard on URLs and addresses, without a network."""

import ipaddress

import pytest

from alert_delivery.delivery.ssrf import check_url, forbidden_reason, parse_ip, redact_url
from alert_delivery.errors import TargetForbidden

LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://172.16.0.1/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://240.0.0.1/",
        "https://100.64.0.1/",
        "https://[::1]/",
        "https://[::]/",
        "https://[fe80::1]/",
        "https://[fc00::1]/",
        "https://[ff02::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[2002:7f00:1::]/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://0x7f.1/",
        "https://127.1/",
        "https://017700000001/",
        "https://3232235777/",
    ],
)
def test_forbidden_literals_in_every_spelling(url: str) -> None:
    with pytest.raises(TargetForbidden):
        check_url(url, ())


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x",
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://x/",
        "https://user:pw@example.com/",
        "https:///nohost",
        "https://exa mple.com/",
    ],
)
def test_scheme_credentials_and_host_shape(url: str) -> None:
    with pytest.raises(TargetForbidden):
        check_url(url, ())


def test_public_https_literal_passes_without_dns() -> None:
    check_url("https://93.184.216.34/hook", ())
    check_url("https://hooks.example.com/services/T/B/X", ())


def test_allow_list_permits_loopback_and_plain_http_only_inside_it() -> None:
    check_url("http://127.0.0.1:9/hook", LOOPBACK_ONLY)
    check_url("https://127.0.0.1:9/hook", LOOPBACK_ONLY)
    with pytest.raises(TargetForbidden):
        check_url("http://127.0.0.2:9/hook", LOOPBACK_ONLY)
    with pytest.raises(TargetForbidden, match="plain http"):
        check_url("http://93.184.216.34/hook", LOOPBACK_ONLY)


def test_localhost_name_is_refused_after_resolution_without_allow_list() -> None:
    with pytest.raises(TargetForbidden, match="loopback"):
        check_url("https://localhost:8443/hook", (), resolve=True)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.com", None),
    ],
)
def test_parse_ip_spellings(host: str, expected: str | None) -> None:
    parsed = parse_ip(host)
    assert (str(parsed) if parsed else None) == expected


def test_mapped_ipv6_is_judged_by_its_ipv4() -> None:
    assert forbidden_reason(ipaddress.ip_address("::ffff:10.0.0.1")) == "private address"
    assert forbidden_reason(ipaddress.ip_address("::ffff:8.8.8.8")) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/SECRET?token=x", "https://hooks.slack.com/…"),
        ("http://127.0.0.1:8080/hook/secret", "http://127.0.0.1/…"),
        ("https://[::1]:8443/p", "https://[::1]/…"),
        ("not a url", "<malformed URL>"),
    ],
)
def test_redaction_never_shows_path_query_or_port(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_error_messages_never_carry_the_path() -> None:
    with pytest.raises(TargetForbidden) as err:
        check_url("https://10.0.0.1/very-secret-token", ())
    assert "very-secret-token" not in str(err.value)
