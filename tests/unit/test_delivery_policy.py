"""Pure parts of delivery: retry policy, status verdicts, outcome decisions, signing."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alert_delivery.delivery.engine import decide, serialise
from alert_delivery.delivery.outcome import Attempt, Verdict, account, classify_status
from alert_delivery.delivery.retry import (
    DEFAULT_SCHEDULE_S,
    RetryPolicy,
    next_delay,
    parse_retry_after,
)
from alert_delivery.delivery.signing import generate_secret, sign, signature_header
from alert_delivery.delivery.store import Claimed, HealthDelta


@pytest.mark.parametrize(
    ("attempts", "rand", "expected"),
    [
        (1, 0.5, 5.0),
        (1, 0.0, 4.0),
        (1, 0.999999, 6.0),
        (2, 0.5, 30.0),
        (3, 0.5, 120.0),
        (4, 0.5, 300.0),
        (5, 0.5, 1800.0),
        (6, 0.5, 7200.0),
        (7, 0.5, 43200.0),
        (8, 0.5, 86400.0),
        (8, 0.0, 86400.0 * 0.8),
        (9, 0.5, None),
        (0, 0.5, None),
    ],
)
def test_default_schedule_with_jitter(attempts: int, rand: float, expected: float | None) -> None:
    delay = next_delay(RetryPolicy(), attempts, rand=rand)
    if expected is None:
        assert delay is None
    else:
        assert delay == pytest.approx(expected, rel=1e-4)


def test_default_schedule_is_the_documented_one() -> None:
    assert DEFAULT_SCHEDULE_S == (5, 30, 120, 300, 1800, 7200, 43200, 86400)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(None, 5.0), (1.0, 5.0), (60.0, 60.0), (10_000.0, 3600.0)],
)
def test_retry_after_wins_when_longer_up_to_the_cap(
    retry_after: float | None, expected: float
) -> None:
    assert next_delay(RetryPolicy(), 1, retry_after_s=retry_after, rand=0.5) == expected


def test_per_webhook_override() -> None:
    policy = RetryPolicy.for_webhook([1, 2])
    assert next_delay(policy, 2, rand=0.5) == 2.0
    assert next_delay(policy, 3, rand=0.5) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 90) == 90.0


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (301, Verdict.PERMANENT),
        (302, Verdict.PERMANENT),
        (400, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (408, Verdict.RETRY),
        (410, Verdict.GONE),
        (429, Verdict.THROTTLED),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_status_verdicts(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


def _row(attempts: int = 0, kind: str = "webhook") -> Claimed:
    return Claimed(
        1,
        "msg_1",
        None,
        7,
        "trigger",
        {"b": 1, "a": "é"},
        attempts,
        kind,
        "n",
        None,
        "",
        None,
        {},
        10.0,
        [10],
        True,
    )


@pytest.mark.parametrize(
    ("attempt", "attempts_before", "status", "event"),
    [
        (Attempt(Verdict.DELIVERED, 200), 0, "delivered", "delivered"),
        (Attempt(Verdict.RETRY, 500, "HTTP 500"), 0, "pending", "retry_scheduled"),
        (Attempt(Verdict.RETRY, 500, "HTTP 500"), 1, "dead", "dead_lettered"),
        (Attempt(Verdict.PERMANENT, 404, "HTTP 404"), 0, "dead", "dead_lettered"),
        (Attempt(Verdict.GONE, 410, "gone"), 0, "dead", "dead_lettered"),
    ],
)
def test_decide(attempt: Attempt, attempts_before: int, status: str, event: str) -> None:
    policy = RetryPolicy.for_webhook([10])
    out = decide(_row(attempts_before), attempt, policy)
    assert (out.status, out.log_event, out.counted, out.http_status) == (
        status,
        event,
        True,
        attempt.status,
    )
    if status == "dead":
        assert out.error


def test_serialise_is_compact_and_adds_routing_key_only_for_pagerduty() -> None:
    assert serialise(_row(), ["whsec_x"]) == '{"b":1,"a":"é"}'.encode()
    pd = json.loads(serialise(_row(kind="pagerduty"), ["R0UTING"]))
    assert pd["routing_key"] == "R0UTING"


def test_signature_matches_an_independent_computation_and_the_library() -> None:
    secret = generate_secret()
    body = b'{"hello":"world"}'
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    ).decode()
    assert sign("msg_1", 1700000000, body, secret) == f"v1,{expected}"
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign("msg_1", now, body, secret),
    }
    assert Webhook(secret).verify(body, headers) == {"hello": "world"}
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)


@pytest.mark.parametrize("key_bytes", [16, 24, 63, 64, 65, 200])
def test_signature_equals_hmac_for_keys_shorter_equal_and_longer_than_a_block(
    key_bytes: int,
) -> None:
    key = bytes(range(key_bytes % 256)) + bytes(max(0, key_bytes - 256))
    secret = "whsec_" + base64.b64encode(key).decode()
    for body in (b"", b"{}", bytes(range(256)) * 5):
        mac = hmac.new(key, b"id.7." + body, hashlib.sha256).digest()
        assert sign("id", 7, body, secret) == "v1," + base64.b64encode(mac).decode()


def test_rotation_sends_both_signatures_and_either_secret_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    now = int(time.time())
    header = signature_header("msg_2", now, b"{}", [new, old])
    assert len(header.split(" ")) == 2
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(now), "webhook-signature": header}
    for secret in (old, new):
        assert Webhook(secret).verify(b"{}", headers) == {}


@pytest.mark.parametrize(
    ("verdicts", "ok", "failed", "reset", "tail"),
    [
        ([Verdict.RETRY, Verdict.RETRY], 0, 2, False, 2),
        ([Verdict.RETRY, Verdict.DELIVERED, Verdict.RETRY], 1, 2, True, 1),
        ([Verdict.DELIVERED, Verdict.PERMANENT], 1, 1, True, 0),
        ([Verdict.GONE, Verdict.RETRY, Verdict.DELIVERED], 1, 2, True, 0),
    ],
)
def test_breaker_bookkeeping_counts_only_retryable_failures_in_completion_order(
    verdicts: list[Verdict], ok: int, failed: int, reset: bool, tail: int
) -> None:
    delta = HealthDelta()
    for verdict in verdicts:
        account(delta, Attempt(verdict, 200, latency_ms=1.0))
    assert (delta.ok, delta.failed, delta.reset, delta.trailing) == (ok, failed, reset, tail)
    assert len(delta.latencies) == len(verdicts)
