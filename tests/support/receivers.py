"""Real HTTP receivers on 127.0.0.1: an aiohttp.web app in a background thread.

Each receiver records every request (headers, body, arrival time) and answers according to a
``behaviour`` callable, so tests can script flaky, slow, throttling, gone or redirecting
endpoints.
"""

import asyncio
import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict


@dataclass(frozen=True)
class Received:
    path: str
    headers: CIMultiDict[str]
    """Case-insensitive, as HTTP header names are (clients differ in the case they send)."""
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    endless: bool = False
    """Stream a body that never ends (until the client goes away)."""


Behaviour = Callable[[int, Received], Reply]


def always(status: int = 200, **kwargs: object) -> Behaviour:
    return lambda _n, _r: Reply(status, **kwargs)  # type: ignore[arg-type]


def flaky(failure_rate: float, seed: int = 7) -> Behaviour:
    rng = random.Random(seed)
    lock = threading.Lock()

    def behave(_n: int, _r: Received) -> Reply:
        with lock:
            return Reply(500 if rng.random() < failure_rate else 200)

    return behave


def sequence(*replies: Reply) -> Behaviour:
    """The n-th request gets replies[n]; later ones get the last reply."""
    return lambda n, _r: replies[min(n, len(replies) - 1)]


class Receiver:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or always(200)
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def bodies(self) -> list[bytes]:
        with self._lock:
            return [r.body for r in self.requests]

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers.get("webhook-id", "") for r in self.requests]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        with self._lock:
            raise AssertionError(f"expected {count} requests, got {len(self.requests)}")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        got = Received(
            request.path, CIMultiDict(request.headers), await request.read(), time.time()
        )
        with self._lock:
            n = len(self.requests)
            self.requests.append(got)
        reply = self.behaviour(n, got)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.endless:
            stream = web.StreamResponse(status=reply.status, headers=reply.headers)
            await stream.prepare(request)
            with contextlib.suppress(ConnectionError):
                while True:
                    await stream.write(b"x" * 65536)
            return stream
        return web.Response(status=reply.status, headers=reply.headers, text="ok")


@contextmanager
def serve(receiver: Receiver) -> Iterator[Receiver]:
    """Run ``receiver`` on a free port of 127.0.0.1 until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    receiver.port = sock.getsockname()[1]

    stop = asyncio.Event()

    async def main() -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield receiver
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        sock.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port
