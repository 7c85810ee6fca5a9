"""The HTTP API in tests: the real aiohttp application on 127.0.0.1 in a background thread,
tokens made with the real ``tokens`` code, and a small stdlib HTTP client."""

import asyncio
import base64
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiohttp import web

from alert_delivery.api import ServeOptions, build_app
from alert_delivery.api.database import Database
from alert_delivery.api.tokens import add_token


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Api:
    url: str
    tokens: dict[str, str] = field(repr=False)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "admin",
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        basic: bool = False,
    ) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            secret = self.tokens.get(token, token)
            if basic:
                sent["Authorization"] = "Basic " + base64.b64encode(f"x:{secret}".encode()).decode()
            else:
                sent["Authorization"] = f"Bearer {secret}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers), exc.read())


def make_tokens(db_url: str, **rates: float) -> dict[str, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        out = {scope: add_token(conn, scope, scope) for scope in ("ingest", "read", "admin")}
        for name, rate in rates.items():
            out[name] = add_token(conn, name, "ingest", rate_per_s=rate)
    return out


@contextmanager
def running_api(db_url: str, options: ServeOptions | None = None, **rates: float) -> Iterator[Api]:
    tokens = make_tokens(db_url, **rates)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runner = web.AppRunner(build_app(Database(db_url, threads=4), options), access_log=None)

    async def main() -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert ready.wait(10), "the API did not start"
    try:
        yield Api(f"http://127.0.0.1:{port}", tokens)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()
        sock.close()
