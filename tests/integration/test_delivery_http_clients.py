"""The sender contract every HTTP client keeps (``ALERT_DELIVERY_HTTP_CLIENT``), against real
receivers on 127.0.0.1: the body cap, timeouts and failures mapped onto the same verdicts."""

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp.abc import AbstractResolver

from alert_delivery.config import HttpClient
from alert_delivery.delivery.http_client import open_sender
from alert_delivery.delivery.outcome import Attempt, Verdict
from alert_delivery.delivery.sender import SenderConfig
from tests.integration.test_delivery_guards import FixedResolver
from tests.support.delivery import http_client
from tests.support.receivers import Receiver, always, serve

__all__ = ["http_client"]

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
CONFIG = SenderConfig(connect_timeout_s=1.0, read_timeout_s=0.5)


def post_once(client: HttpClient, url: str, resolver: AbstractResolver | None = None) -> Attempt:
    async def go() -> Attempt:
        sender = open_sender(client, CONFIG, LOOPBACK, resolver)
        try:
            return await sender.post(url, b'{"a": 1}', {"Content-Type": "application/json"})
        finally:
            await sender.close()

    return asyncio.run(go())


@contextmanager
def hang_up_after_reading() -> Iterator[int]:
    """A server that reads the request and closes without answering: the receiver may have it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve_forever() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_body_that_never_ends_is_read_only_up_to_the_cap(http_client: HttpClient) -> None:
    with serve(Receiver(always(200, endless=True))) as rx:
        started = time.monotonic()
        attempt = post_once(http_client, rx.url)
    assert attempt.verdict is Verdict.DELIVERED and attempt.status == 200
    assert time.monotonic() - started < 5


def test_a_response_slower_than_the_read_timeout_is_a_retry(http_client: HttpClient) -> None:
    with serve(Receiver(always(200, delay_s=1.5))) as rx:
        attempt = post_once(http_client, rx.url)
        rx.wait_for(1)
    assert (attempt.verdict, attempt.error) == (Verdict.RETRY, "timed out")


def test_a_hang_up_after_the_request_is_a_retry_without_the_url(http_client: HttpClient) -> None:
    with hang_up_after_reading() as port:
        attempt = post_once(http_client, f"http://127.0.0.1:{port}/secret-path")
    assert attempt.verdict is Verdict.RETRY and attempt.status is None
    assert attempt.error is not None and attempt.error.startswith("connection error")
    assert "secret-path" not in attempt.error


def test_retry_after_of_a_503_is_read(http_client: HttpClient) -> None:
    with serve(Receiver(always(503, headers={"Retry-After": "7"}))) as rx:
        attempt = post_once(http_client, rx.url)
        [got] = rx.wait_for(1)
    assert (attempt.verdict, attempt.status, attempt.retry_after_s) == (Verdict.RETRY, 503, 7.0)
    assert got.body == b'{"a": 1}' and got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("alert-delivery/")


def test_a_refused_address_moves_on_to_the_next_checked_one(http_client: HttpClient) -> None:
    # Nothing listens on 127.0.0.2 (the receiver is bound to 127.0.0.1): refused, nothing sent.
    with serve(Receiver()) as rx:
        url = f"http://hooks.example.com:{rx.port}/hook"
        attempt = post_once(http_client, url, FixedResolver("127.0.0.2", "127.0.0.1"))
        rx.wait_for(1)
    assert attempt.verdict is Verdict.DELIVERED, attempt.error


def test_every_address_refused_is_a_retry(http_client: HttpClient) -> None:
    with serve(Receiver()) as rx:
        url = f"http://hooks.example.com:{rx.port}/hook"
        attempt = post_once(http_client, url, FixedResolver("127.0.0.2", "127.0.0.3"))
    assert attempt.verdict is Verdict.RETRY
    assert attempt.error is not None and attempt.error.startswith("connection failed")
