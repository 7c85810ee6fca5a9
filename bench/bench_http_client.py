"""HTTP client benchmark: the end-to-end worker with each client (``ALERT_DELIVERY_HTTP_CLIENT``).

Per round and client (the order alternates between rounds), on a settled server and a fresh
database, one ``alert-delivery worker`` process against the loopback uvicorn receiver:

- latency: 200 rows/s offered for 10 s (committed INSERT + NOTIFY each), commit -> receipt;
- burst: 10,000 new-style rows over 50 webhooks committed at once (bodies rendered at claim),
  commit -> the last receipt.

CPU per delivery is the worker process's own user + system time (``/proc/<pid>/stat``, every
thread, so reqwest's runtime threads count) over each phase, divided by the deliveries. The
bare rows are each client alone in this process (50 coroutines, the same requests, no engine),
process CPU per request. The decision rule (issue #14): pyreqwest becomes the default only with
>= 20 % more burst throughput or >= 25 % less CPU per delivery, at an equal p99.
"""

import asyncio
import importlib.util
import ipaddress
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from cryptography.fernet import Fernet

from alert_delivery.config import HttpClient
from alert_delivery.delivery.http_client import open_sender
from alert_delivery.delivery.loop import run as run_loop
from alert_delivery.delivery.sender import USER_AGENT, SenderConfig
from alert_delivery.worker import worker_gc
from bench.bench_delivery import ALERTS_SQL, WORKER_ARGS, _produce, _register, _stats
from bench.common import BenchContext, BenchRow, percentile
from bench.receiver import start_receiver

CLIENTS: tuple[HttpClient, ...] = ("aiohttp", "pyreqwest")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N_BURST = 10_000
N_WEBHOOKS = 50
LATENCY_SECONDS = 10.0
N_BARE = 10_000
TICK_S = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One worker run of one client."""

    burst_rate: float
    burst_cpu_us: float
    latency_cpu_us: float
    p50_ms: float
    p99_ms: float
    peak_mib: float
    latencies_ms: list[float] = field(default_factory=list)


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, all its threads (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/count", timeout=10) as resp:
        return int(resp.read())


def _wait_ready(db_url: str, worker: "subprocess.Popen[bytes]") -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}")
            row = conn.execute(
                "SELECT count(*) FROM alert_delivery.workers WHERE stopped_at IS NULL"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise RuntimeError("worker did not start")


def _worker_run(db_url: str, port: int, env: dict[str, str], client: HttpClient) -> Run:
    [latency_hook, *hooks] = _register(db_url, port, env, 1 + N_WEBHOOKS)
    worker = subprocess.Popen(
        [sys.executable, *WORKER_ARGS],
        env={
            **os.environ,
            **env,
            "ALERT_DELIVERY_DATABASE_URL": db_url,
            "ALERT_DELIVERY_HTTP_CLIENT": client,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(db_url, worker)
        time.sleep(0.5)
        _stats(port)
        # Latency at a steady 200/s.
        committed: dict[str, float] = {}
        cpu = _cpu_s(worker.pid)
        _produce(db_url, latency_hook, committed, LATENCY_SECONDS)
        deadline = time.monotonic() + 10
        while _count(port) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.05)
        latency_cpu = _cpu_s(worker.pid) - cpu
        received = _stats(port)
        latencies = [(received[m] - t) * 1000.0 for m, t in committed.items() if m in received]
        if len(latencies) < len(committed):
            raise RuntimeError(f"{client}: {len(committed) - len(latencies)} rows not received")
        # Burst: N_BURST rows committed at once.
        with psycopg.connect(db_url, autocommit=True) as conn:
            with conn.transaction():
                conn.execute("SELECT set_config('alert_delivery.raising', 'on', true)")
                conn.execute(ALERTS_SQL, (N_BURST,))
            conn.execute("ANALYZE alert_delivery.alerts")
            cpu = _cpu_s(worker.pid)
            with conn.transaction():
                conn.execute(
                    "INSERT INTO alert_delivery.delivery_queue"
                    " (alert_id, alert_ids, webhook_id, event, seq, payload)"
                    " SELECT a.alert_id, ARRAY[a.alert_id], (%s::bigint[])[1 + a.alert_id %% %s],"
                    " 'trigger', 0, '{}' FROM alert_delivery.alerts a",
                    (hooks, len(hooks)),
                )
                conn.execute("SELECT pg_notify('alert_delivery_queue', '0')")
            started = time.time()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM alert_delivery.delivery_queue"
                    " WHERE status <> 'delivered' AND webhook_id <> %s",
                    (latency_hook,),
                ).fetchone()
                if row and row[0] == 0:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"{client}: burst not delivered in 120 s")
            burst_cpu = _cpu_s(worker.pid) - cpu
        arrivals = _stats(port)
        if len(arrivals) != N_BURST:
            raise RuntimeError(f"{client}: {len(arrivals)} of {N_BURST} burst rows received")
        peak = _peak_mib(worker.pid)
    finally:
        worker.terminate()
        worker.wait(20)
    return Run(
        burst_rate=N_BURST / (max(arrivals.values()) - started),
        burst_cpu_us=burst_cpu / N_BURST * 1e6,
        latency_cpu_us=latency_cpu / len(latencies) * 1e6,
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        peak_mib=peak,
        latencies_ms=latencies,
    )


def _headers(i: int) -> dict[str, str]:
    """The Standard Webhooks headers with values of the engine's sizes."""
    return {
        "Content-Type": "application/json",
        "webhook-id": f"bare-{i:031d}",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 43 + "=",
    }


async def _bare(client: HttpClient, port: int, body: bytes) -> tuple[float, float]:
    """(requests/s, process CPU µs per request) of 50 coroutines posting N_BARE requests."""
    closing: Callable[[], Coroutine[Any, Any, None]]
    if client == "pyreqwest":
        from pyreqwest.client import ClientBuilder

        rq = ClientBuilder().user_agent(USER_AGENT).build()

        async def one(i: int) -> None:
            url = f"http://127.0.0.1:{port}/hook/{i % N_WEBHOOKS}"
            resp = await rq.post(url).headers(_headers(i)).body_bytes(body).build().send()
            await resp.bytes()

        closing = rq.close
    else:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=50), headers={"User-Agent": USER_AGENT}
        )

        async def one(i: int) -> None:
            url = f"http://127.0.0.1:{port}/hook/{i % N_WEBHOOKS}"
            async with session.post(url, data=body, headers=_headers(i)) as resp:
                await resp.read()

        closing = session.close
    todo = iter(range(N_BARE))

    async def lane() -> None:
        for i in todo:
            await one(i)

    try:
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(50)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await closing()
    return N_BARE / seconds, cpu / N_BARE * 1e6


async def _sender_loop(client: HttpClient, port: int, body: bytes) -> tuple[float, float]:
    """The same through the project's sender (guard, pinning, body cap, verdicts), no engine."""
    sender = open_sender(client, SenderConfig(), (ipaddress.ip_network("127.0.0.1/32"),))
    todo = iter(range(N_BARE))

    async def lane() -> None:
        for i in todo:
            url = f"http://127.0.0.1:{port}/hook/{i % N_WEBHOOKS}"
            attempt = await sender.post(url, body, _headers(i))
            assert attempt.status == 200, attempt.error

    try:
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(50)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await sender.close()
    return N_BARE / seconds, cpu / N_BARE * 1e6


def _median_range(values: list[float], fmt: str = ".0f") -> str:
    ordered = sorted(values)
    return (
        f"{statistics.median(ordered):{fmt}} ({ordered[0]:{fmt}}-{ordered[-1]:{fmt}})"
        if ordered
        else "-"
    )


def run(ctx: BenchContext) -> list[BenchRow]:
    clients = [c for c in CLIENTS if c == "aiohttp" or importlib.util.find_spec(c) is not None]
    # (pyreqwest's rows are left out when it is not installed; the decision row says so)
    env = {
        "ALERT_DELIVERY_SECRET_KEYS": Fernet.generate_key().decode(),
        "ALERT_DELIVERY_ALLOWED_TARGETS": "127.0.0.1/32",
    }
    runs: dict[str, list[Run]] = {c: [] for c in clients}
    bare: dict[str, list[tuple[float, float]]] = {c: [] for c in clients}
    senders: dict[str, list[tuple[float, float]]] = {c: [] for c in clients}
    loads: list[float] = []
    body = b'{"text": "' + b"x" * 1000 + b'"}'
    with tempfile.TemporaryDirectory() as tmp:
        env["ALERT_DELIVERY_HOME"] = tmp
        receiver, port = start_receiver(Path(tmp))
        try:
            for n in range(ROUNDS):
                order = clients if n % 2 == 0 else clients[::-1]
                for client in order:
                    ctx.settle()
                    loads.append(os.getloadavg()[0])
                    runs[client].append(_worker_run(ctx.fresh_database(), port, env, client))
                for client in order:
                    with worker_gc():
                        bare[client].append(run_loop(_bare(client, port, body)))
                        senders[client].append(run_loop(_sender_loop(client, port, body)))
                    _stats(port)
        finally:
            receiver.terminate()
            receiver.wait(10)
    rows = _rows(clients, runs, bare, senders)
    spread = (
        f"median (min-max) of {ROUNDS} interleaved rounds, load {min(loads):.1f}-{max(loads):.1f}"
    )
    rows.append(_decision(runs, spread))
    return rows


Loops = dict[str, list[tuple[float, float]]]


def _rows(
    clients: list[HttpClient], runs: dict[str, list[Run]], bare: Loops, senders: Loops
) -> list[BenchRow]:
    rows = []
    for client in clients:
        rs = runs[client]
        rate = statistics.median(r.burst_rate for r in rs)
        rows.append(
            BenchRow(
                f"http client: worker burst, {client}",
                N_BURST,
                N_BURST / rate,
                note=f"{_median_range([r.burst_rate for r in rs])}/s, CPU "
                f"{_median_range([r.burst_cpu_us for r in rs])} µs/delivery, worker peak "
                f"{_median_range([r.peak_mib for r in rs])} MiB",
            )
        )
        rows.append(
            BenchRow(
                f"http client: worker @ 200/s, {client}",
                sum(len(r.latencies_ms) for r in rs),
                LATENCY_SECONDS * len(rs),
                latencies_ms=[x for r in rs for x in r.latencies_ms],
                note=f"p99 {_median_range([r.p99_ms for r in rs], '.2f')} ms, p50 "
                f"{_median_range([r.p50_ms for r in rs], '.2f')} ms, CPU "
                f"{_median_range([r.latency_cpu_us for r in rs])} µs/delivery",
            )
        )
    for what, loops in (("bare loop", bare), ("sender loop", senders)):
        for client in clients:
            rates, cpus = [b[0] for b in loops[client]], [b[1] for b in loops[client]]
            rows.append(
                BenchRow(
                    f"http client: {what}, {client}",
                    N_BARE,
                    N_BARE / statistics.median(rates),
                    note=f"{_median_range(rates)}/s, CPU {_median_range(cpus)} µs/request",
                )
            )
    return rows


def _decision(runs: dict[str, list[Run]], spread: str) -> BenchRow:
    if "pyreqwest" not in runs:
        return BenchRow("http client: decision", 0, 0.0, note="pyreqwest not installed")

    def med(client: str, pick: Callable[[Run], float]) -> float:
        return statistics.median(pick(r) for r in runs[client])

    gain = med("pyreqwest", lambda r: r.burst_rate) / med("aiohttp", lambda r: r.burst_rate) - 1
    saved = 1 - med("pyreqwest", lambda r: r.burst_cpu_us) / med(
        "aiohttp", lambda r: r.burst_cpu_us
    )
    p99 = med("pyreqwest", lambda r: r.p99_ms) / med("aiohttp", lambda r: r.p99_ms)
    # Paired by round too: the two runs of a round are minutes apart, not the whole benchmark.
    pairs = list(zip(runs["pyreqwest"], runs["aiohttp"], strict=True))
    rate_ratios = [p.burst_rate / a.burst_rate - 1 for p, a in pairs]
    cpu_ratios = [p.burst_cpu_us / a.burst_cpu_us - 1 for p, a in pairs]
    # "Equal p99": within 10 %, about the spread of one client's p99 between rounds here.
    switch = (gain >= 0.20 or saved >= 0.25) and p99 <= 1.10
    return BenchRow(
        "http client: pyreqwest vs aiohttp (worker)",
        0,
        0.0,
        target=">= +20 % throughput or >= 25 % less CPU, equal p99",
        met=switch,
        note=f"throughput {gain:+.0%}, CPU per delivery {-saved:+.0%}, p99 x{p99:.2f}; "
        f"per round: throughput {_median_range([100 * r for r in rate_ratios], '+.0f')} %, "
        f"CPU {_median_range([100 * r for r in cpu_ratios], '+.0f')} %; {spread}",
    )
