"""SSRF at registration and at connect time, the shared breaker and token bucket."""

import asyncio
import ipaddress
import socket

import psycopg
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from alert_delivery.config import HttpClient, IPNetwork, Settings, load_settings
from alert_delivery.delivery.engine import deliver_batch
from alert_delivery.delivery.http_client import open_sender
from alert_delivery.delivery.outcome import Attempt, Verdict
from alert_delivery.delivery.registry import add_webhook
from alert_delivery.delivery.sender import SenderConfig
from alert_delivery.errors import TargetForbidden
from tests.support.delivery import (
    FAST,
    client_env,
    delivery_env,
    enqueue,
    http_client,
    make_due,
    queue_rows,
)
from tests.support.receivers import Receiver, always, serve

# The tests that send run once per HTTP client (http_client, client_env).
__all__ = ["client_env", "delivery_env", "http_client"]


class FixedResolver(AbstractResolver):
    """A DNS that answers every name with these addresses (a rebinding attacker's favourite)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


def test_registration_refuses_private_targets_and_plain_http(
    db_url: str, delivery_env: Settings
) -> None:
    bare = load_settings({"ALERT_DELIVERY_SECRET_KEYS": delivery_env.secret_keys[0]})
    for url in (
        "https://169.254.169.254/latest",
        "https://localhost/x",
        "http://example.com/",
        "https://0x7f000001/",
    ):
        with pytest.raises(TargetForbidden):
            add_webhook(db_url, name="bad", kind="webhook", url=url, settings=bare)


def post_once(
    client: HttpClient,
    url: str,
    allowed: tuple[IPNetwork, ...] = (),
    resolver: AbstractResolver | None = None,
) -> Attempt:
    """One attempt through a fresh sender of ``client``."""

    async def go() -> Attempt:
        sender = open_sender(client, SenderConfig(connect_timeout_s=1.0), allowed, resolver)
        try:
            return await sender.post(url, b"{}", {})
        finally:
            await sender.close()

    return asyncio.run(go())


def test_hostname_resolving_to_a_private_address_is_refused_at_connect_time(
    http_client: HttpClient,
) -> None:
    # Without an allow-list even 127.0.0.1 is forbidden; the URL names a public-looking host.
    attempt = post_once(http_client, "https://hooks.example.com/x", (), FixedResolver("10.0.0.7"))
    assert attempt.verdict is Verdict.PERMANENT
    assert attempt.error is not None
    assert "private address" in attempt.error and "refused at connect" in attempt.error


def test_one_forbidden_address_among_the_answers_refuses_the_host(http_client: HttpClient) -> None:
    resolver = FixedResolver("93.184.216.34", "169.254.169.254")
    attempt = post_once(http_client, "https://hooks.example.com/x", (), resolver)
    assert attempt.verdict is Verdict.PERMANENT
    assert attempt.error is not None and "link-local address" in attempt.error


def test_localhost_receiver_not_reached_without_allow_list(http_client: HttpClient) -> None:
    with serve(Receiver()) as rx:
        attempt = post_once(http_client, f"http://localhost:{rx.port}/hook")
        assert rx.requests == []
    assert attempt.verdict is Verdict.PERMANENT
    assert attempt.error is not None and "loopback" in attempt.error


def test_the_address_checked_is_the_address_connected_to(http_client: HttpClient) -> None:
    """The name is resolved once, by the guard, and the socket goes to that address: the
    receiver on 127.0.0.1 is reached under a name no real DNS maps there."""
    loopback = (ipaddress.ip_network("127.0.0.1/32"),)
    with serve(Receiver()) as rx:
        url = f"http://hooks.example.com:{rx.port}/hook"
        attempt = post_once(http_client, url, loopback, FixedResolver("127.0.0.1"))
        [got] = rx.wait_for(1)
    assert attempt.verdict is Verdict.DELIVERED, attempt.error
    assert got.headers["Host"] == f"hooks.example.com:{rx.port}"


def test_redirect_to_private_address_is_not_followed(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with (
        serve(Receiver()) as target,
        serve(Receiver(always(307, headers={"Location": "http://127.0.0.1:1/internal"}))) as rx,
    ):
        webhook = add_webhook(db_url, name="r", kind="webhook", url=rx.url, settings=client_env)
        [did] = enqueue(conn, webhook.webhook_id, [{"x": 1}])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert target.requests == [] and len(rx.requests) == 1
    assert result.dead == 1
    assert queue_rows(conn)[did]["last_status"] == 307


def test_breaker_opens_after_five_failures_defers_then_probes_once(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver(always(500))) as rx:
        webhook = add_webhook(
            db_url,
            name="b",
            kind="webhook",
            url=rx.url,
            settings=client_env,
            retry_schedule_s=[0] * 20,
            rate_limit_per_s=1000.0,
        )
        enqueue(conn, webhook.webhook_id, [{"i": i} for i in range(5)])
        first = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert first.retrying == 5
        health = conn.execute(
            "SELECT breaker_state, consecutive_failures, status FROM alert_delivery.webhook_health"
            " WHERE webhook_id = %s",
            (webhook.webhook_id,),
        ).fetchone()
        assert health == ("open", 5, "unavailable")
        make_due(conn)
        second = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert second.deferred == 5 and len(rx.requests) == 5, "open breaker defers, sends none"
        assert {r["status"] for r in queue_rows(conn).values()} == {"pending"}
        conn.execute(
            "UPDATE alert_delivery.webhook_health SET breaker_opened_at = now() - interval '2 s'"
        )
        make_due(conn)
        rx.behaviour = always(200)
        third = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert (third.delivered, third.deferred) == (1, 4), "exactly one half-open probe"
        state = conn.execute("SELECT breaker_state FROM alert_delivery.webhook_health").fetchone()
        assert state == ("closed",)
        make_due(conn)
        fourth = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert fourth.delivered == 4
    rows = queue_rows(conn)
    assert {r["status"] for r in rows.values()} == {"delivered"}
    assert max(r["attempts"] for r in rows.values()) == 2, "deferrals are not attempts"


def test_token_bucket_defers_past_the_rate_never_drops(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver()) as rx:
        webhook = add_webhook(
            db_url,
            name="tb",
            kind="webhook",
            url=rx.url,
            settings=client_env,
            rate_limit_per_s=5.0,
        )
        enqueue(conn, webhook.webhook_id, [{"i": i} for i in range(12)])
        first = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert (first.delivered, first.deferred) == (5, 7)
        waits = sorted(
            float(r[0])
            for r in conn.execute(
                "SELECT extract(epoch FROM next_attempt_at - now())"
                " FROM alert_delivery.delivery_queue"
                " WHERE status = 'pending'"
            ).fetchall()
        )
        assert 0 < waits[0] < 0.5 and waits[-1] > 1.0, "deferred rows are spread at the rate"
        make_due(conn)
        for _ in range(20):
            if all(r["status"] == "delivered" for r in queue_rows(conn).values()):
                break
            deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
            make_due(conn)
            asyncio.run(asyncio.sleep(0.3))
        assert len(rx.requests) == 12
    assert {r["status"] for r in queue_rows(conn).values()} == {"delivered"}
