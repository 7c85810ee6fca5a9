"""A loopback webhook receiver for the demo: verifies Standard Webhooks signatures and records.

It stands in for a team's real endpoint so `make run` can show a signed delivery end to end
without leaving the machine.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    webhook_id: str
    verified: bool
    body: dict[str, Any]


@dataclass
class DemoReceiver:
    """Runs an aiohttp server on 127.0.0.1 in a background thread."""

    secret: str
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts"

    def verify(self, msg_id: str, timestamp: str, body: bytes, signatures: str) -> bool:
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return any(
            hmac.compare_digest(sig.partition(",")[2], expected)
            for sig in signatures.split()
            if sig.startswith("v1,")
        )

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        verified = self.verify(
            request.headers.get("webhook-id", ""),
            request.headers.get("webhook-timestamp", ""),
            body,
            request.headers.get("webhook-signature", ""),
        )
        self.received.append(
            Received(request.headers.get("webhook-id", ""), verified, json.loads(body))
        )
        return web.Response(status=204 if verified else 401)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/alerts", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> "DemoReceiver":
        self._thread = threading.Thread(target=self._run, name="demo-receiver", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
