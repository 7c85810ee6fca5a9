"""The benchmarks' HTTP receiver: a minimal ASGI app under uvicorn in its own process on
127.0.0.1, so the receiver's CPU is never the benchmark process's."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Both receivers: an ASGI app that answers uvicorn's lifespan messages, then reads a request.
_ASGI_HEAD = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
"""

# Records, per webhook-id, when the request arrived: GET /stats returns the arrivals, GET
# /stats/take returns and forgets them (a round reads only its own), GET /stats/count says how
# many there are (cheap to poll); /missing... answers 404.
WEBHOOK_ID_RECEIVER = (
    """
import json, time
seen = {}

"""
    + _ASGI_HEAD
    + """    more = True
    while more:
        msg = await receive()
        more = msg.get("more_body", False)
    now = time.time()
    body = b"ok"
    status = 404 if scope["path"].startswith("/missing") else 200
    if scope["path"] == "/stats/count":
        body = str(len(seen)).encode()
    elif scope["path"].startswith("/stats"):
        body = json.dumps(seen).encode()
        if scope["path"] == "/stats/take":
            seen.clear()
    else:
        for k, v in scope["headers"]:
            if k == b"webhook-id":
                seen[v.decode()] = now
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
"""
)


# Records, per alert (its ``id`` label), when the first body carrying it arrived: Alertmanager's
# webhook body ("alerts") and ours ("data.alerts") both carry the labels. GET /stats returns and
# forgets the arrivals.
LABELS_RECEIVER = (
    """
import json, time
seen = {}

"""
    + _ASGI_HEAD
    + """    chunks = []
    more = True
    while more:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        more = msg.get("more_body", False)
    now = time.time()
    body = b"ok"
    if scope["path"] == "/stats":
        body = json.dumps(seen).encode()
        seen.clear()
    else:
        doc = json.loads(b"".join(chunks) or b"{}")
        alerts = doc.get("alerts") or doc.get("data", {}).get("alerts") or []
        for a in alerts:
            seen.setdefault(a.get("labels", {}).get("id", "?"), now)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
"""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: "subprocess.Popen[bytes]", what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not start")


def start_receiver(
    tmp: Path, app: str = WEBHOOK_ID_RECEIVER, *, module: str = "bench_receiver"
) -> tuple["subprocess.Popen[bytes]", int]:
    """Write ``app`` to ``tmp`` and serve it (uvloop, httptools); the process and its port."""
    (tmp / f"{module}.py").write_text(app)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir", str(tmp),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--loop", "uvloop", "--http", "httptools"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_port(port, proc, "receiver")
    return proc, port


def arrivals(port: int) -> dict[str, float]:
    """The label receiver's arrivals since the last call (it forgets them)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as resp:
        data: dict[str, float] = json.loads(resp.read())
    return data


def wait_arrivals(port: int, count: int, timeout_s: float) -> dict[str, float]:
    """Arrivals until ``count`` alerts arrived (or the deadline); clears the receiver."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < count and time.monotonic() < deadline:
        for key, at in arrivals(port).items():
            seen.setdefault(key, at)
        time.sleep(0.05)
    return seen
