"""The HTTP API (`alert-delivery serve` as a subprocess, real HTTP on 127.0.0.1).

- ingest: batches of 100 Alertmanager-style alerts (one alertname per batch, like one rule
  firing for 100 instances; distinct summaries, so content dedup holds none back) POSTed to
  /api/v2/alerts by 4 concurrent clients; each 200 means the alerts, their routing and queue
  rows are committed (target >= 5,000 alerts/s).
- POST -> webhook: one alert per POST at 200/s with a worker running; latency from the moment
  the POST is sent to the receiver's arrival time (target p99 <= 10 ms). The receiver is the
  label receiver of bench/receiver.py in its own process (in this process it waited for the load
  generator's GIL).
- the road not taken: raising a batch with a savepoint and a call per alert (what rejecting
  only the invalid alert would cost if done that way) against one set-based call.

Rounds are interleaved (ingest, latency, ingest, ...); each row is the median round, the note
gives the range.
"""

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import psycopg
from cryptography.fernet import Fernet

from alert_delivery.alerting.producer import raise_alerts
from alert_delivery.alerting.routing import ensure_rule
from alert_delivery.api.tokens import add_token
from alert_delivery.delivery.registry import add_webhook
from bench.common import ROOT, BenchContext, BenchRow, busy_share, cpu_ticks, percentile
from bench.receiver import LABELS_RECEIVER, arrivals, free_port, start_receiver, wait_arrivals

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BATCH = 100
BATCHES = 50
CLIENTS = 4
RATE = 200.0
SINGLES = 400
INGEST_TARGET = 5_000.0
P99_TARGET_MS = 10.0


@contextmanager
def _process(*args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "alert_delivery", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _wait_healthy(url: str, timeout_s: float = 30.0) -> None:
    async def probe() -> bool:
        try:
            async with aiohttp.ClientSession() as s, s.get(url + "/-/healthy") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    deadline = time.monotonic() + timeout_s
    while not asyncio.run(probe()):
        if time.monotonic() > deadline:
            raise RuntimeError("serve did not start")
        time.sleep(0.1)


async def _ingest_round(url: str, token: str, tag: str) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    bodies = [
        json.dumps(
            [
                {
                    "labels": {
                        "alertname": f"BenchIngest{b}",
                        "id": f"{tag}-{b}-{i}",
                        "severity": "warning",
                    },
                    "annotations": {"summary": f"ingest benchmark {tag}-{b}-{i}"},
                }
                for i in range(BATCH)
            ]
        ).encode()
        for b in range(BATCHES)
    ]
    queue = list(bodies)

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            async with session.post(url + "/api/v2/alerts", data=body, headers=headers) as r:
                assert r.status == 200, await r.text()

    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
        return time.perf_counter() - started


async def _latency_round(url: str, token: str, tag: str, receiver_port: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def post(key: str) -> None:
            labels = {"alertname": f"BenchLatency-{key}", "id": key, "severity": "critical"}
            body = json.dumps([{"labels": labels}]).encode()
            sent[key] = time.time()
            async with session.post(url + "/api/v2/alerts", data=body) as r:
                assert r.status == 200, await r.text()

        tasks = []
        start = time.perf_counter()
        for i in range(SINGLES):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(f"{tag}-{i}")))
        await asyncio.gather(*tasks)
    seen = await asyncio.to_thread(wait_arrivals, receiver_port, len(sent), 30)
    return [(seen[k] - t) * 1000 for k, t in sent.items() if k in seen]


def _wait_drained(url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM alert_delivery.delivery_queue"
                " WHERE status IN ('pending', 'in_flight')"
            ).fetchone()
            if row == (0,):
                return
            time.sleep(0.1)


def _savepoint_cost(url: str) -> tuple[float, float]:
    """ms per 100-alert batch: one raise_alerts call vs a savepoint and a call per alert."""
    with psycopg.connect(url, autocommit=True) as conn:
        out = []
        for mode in ("set", "each"):
            docs = [
                {"labels": {"alertname": "BenchSave", "n": f"{mode}-{i}"}} for i in range(BATCH)
            ]
            t0 = time.perf_counter()
            with conn.transaction():
                if mode == "set":
                    raise_alerts(conn, docs)
                else:
                    for doc in docs:
                        with conn.transaction():
                            raise_alerts(conn, [doc])
            out.append((time.perf_counter() - t0) * 1000)
    return out[0], out[1]


def run(ctx: BenchContext) -> list[BenchRow]:
    url = ctx.fresh_database()
    env = dict(os.environ)
    env["ALERT_DELIVERY_DATABASE_URL"] = url
    env.setdefault("ALERT_DELIVERY_SECRET_KEYS", Fernet.generate_key().decode())
    env["ALERT_DELIVERY_ALLOWED_TARGETS"] = "127.0.0.1/32"
    os.environ.update(
        {k: env[k] for k in ("ALERT_DELIVERY_SECRET_KEYS", "ALERT_DELIVERY_ALLOWED_TARGETS")}
    )
    tmp = tempfile.TemporaryDirectory()
    receiver, receiver_port = start_receiver(
        Path(tmp.name), LABELS_RECEIVER, module="bench_labels_receiver"
    )
    hook = add_webhook(
        url,
        name="bench-sink",
        kind="webhook",
        url=f"http://127.0.0.1:{receiver_port}/hook",
        rate_limit_per_s=100_000,
    )
    ensure_rule(url, name="bench: all to the sink", webhook_ids=[hook.webhook_id])
    with psycopg.connect(url, autocommit=True) as conn:
        token = add_token(conn, "bench", "ingest", rate_per_s=100_000)
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    ingest_s: list[float] = []
    latencies: list[list[float]] = []
    busy: list[float] = []
    try:
        with (
            _process("serve", "--port", str(port), env=env),
            _process("worker", "--poll-interval", "0.2", env=env),
        ):
            _wait_healthy(api)
            asyncio.run(_latency_round(api, token, "warmup", receiver_port))
            for r in range(ROUNDS):
                ingest_s.append(asyncio.run(_ingest_round(api, token, f"r{r}")))
                # The worker delivers the ingested alerts first: latency is measured on a
                # worker that is not working off a backlog of 5,000 deliveries.
                _wait_drained(url)
                arrivals(receiver_port)  # forget the ingested alerts' arrivals
                before = cpu_ticks()
                latencies.append(asyncio.run(_latency_round(api, token, f"r{r}", receiver_port)))
                busy.append(busy_share(before, cpu_ticks()))
        saves = [_savepoint_cost(url) for _ in range(ROUNDS)]
    finally:
        receiver.terminate()
        receiver.wait(10)
        tmp.cleanup()

    n = BATCH * BATCHES
    rates = sorted(n / s for s in ingest_s)
    median_s = statistics.median(ingest_s)
    p99s = sorted(percentile(lat, 0.99) for lat in latencies)
    mid = sorted(latencies, key=lambda lat: percentile(lat, 0.99))[len(latencies) // 2]
    received = sum(len(x) for x in latencies)
    set_ms = statistics.median(s for s, _ in saves)
    each_ms = statistics.median(e for _, e in saves)
    return [
        BenchRow(
            "api: POST /api/v2/alerts, batches of 100",
            n,
            median_s,
            target=f">= {INGEST_TARGET:,.0f}/s",
            met=n / median_s >= INGEST_TARGET,
            note=f"{CLIENTS} clients, durable (commit before 200), routed + queued; "
            f"rounds {rates[0]:,.0f}-{rates[-1]:,.0f}/s",
        ),
        BenchRow(
            "api: one alert per POST at 200/s -> webhook",
            len(mid),
            len(mid) / RATE,
            target=f"p99 <= {P99_TARGET_MS:g} ms",
            met=percentile(mid, 0.99) <= P99_TARGET_MS,
            latencies_ms=mid,
            note=f"worker running; from POST sent to receipt; median round of {ROUNDS}, "
            f"p99 range {p99s[0]:.1f}-{p99s[-1]:.1f} ms; {received}/{ROUNDS * SINGLES} received; "
            f"machine {100 * statistics.median(busy):.0f} % busy (all cores, every process, steal)",
        ),
        BenchRow(
            "api design: 100 alerts, one set-based call",
            BATCH,
            set_ms / 1000,
            note=f"vs savepoint + call per alert: {each_ms:.0f} ms ({each_ms / set_ms:.1f}x)",
        ),
    ]
