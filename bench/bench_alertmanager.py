"""alert-delivery beside Prometheus Alertmanager 0.25 (Debian package), on the same receiver.

Both deliver to one uvicorn receiver in its own process on 127.0.0.1, which parses each body and
records when every alert (by its ``id`` label) arrived; Alertmanager's webhook body and ours both
carry the alerts' labels. Rounds interleave the contenders (AM, then us, then AM ...), and each
row reports the median and the min-max of the rounds.

- Throughput: 10,000 notifications. Alertmanager: alerts posted to ``/api/v2/alerts`` in batches
  of 100 by 8 concurrent clients, one group per alert (``group_by: ['...']``, ``group_wait:
  0s``). alert-delivery: an ``alert-delivery worker`` process on 10,000 queued rows of 10,000
  real alerts over 50 webhooks, every attempt logged and committed. Per second between the
  first and the last arrival.
- Latency: 200 alerts/s for 10 s, one alert per call, from the moment the producer starts its
  call (an HTTP POST to Alertmanager; ``raise_alert`` + commit for us, with a worker running) to
  the arrival at the receiver.
"""

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from cryptography.fernet import Fernet

from alert_delivery.alerting import add_rule, raise_alert
from alert_delivery.config import load_settings
from alert_delivery.delivery.registry import add_webhook
from bench.common import BenchContext, BenchRow, percentile
from bench.receiver import LABELS_RECEIVER, free_port, start_receiver, wait_arrivals, wait_port

N = 10_000
N_WEBHOOKS = 50
BATCH = 100
CLIENTS = 8
RATE = 200
LATENCY_SECONDS = 10
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
RESULTS = Path(__file__).resolve().parent / "results"


AM_CONFIG = """
route:
  receiver: bench
  group_by: ['...']
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 24h
receivers:
  - name: bench
    webhook_configs:
      - url: http://127.0.0.1:{port}/am
        send_resolved: false
"""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _rate(seen: dict[str, float]) -> float:
    if len(seen) < 2:
        return 0.0
    return (len(seen) - 1) / (max(seen.values()) - min(seen.values()))


def _alertmanager_binary() -> str | None:
    # Debian installs it as prometheus-alertmanager.
    return shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")


class Alertmanager:
    def __init__(self, tmp: Path, receiver_port: int) -> None:
        self.tmp = tmp / f"am-{time.monotonic_ns()}"
        self.tmp.mkdir()
        (self.tmp / "am.yml").write_text(AM_CONFIG.format(port=receiver_port))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                _alertmanager_binary() or "alertmanager",
                f"--config.file={self.tmp / 'am.yml'}",
                f"--storage.path={self.tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc, "alertmanager")

    def close(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _am_alert(key: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": "BenchAlert", "id": key, "severity": "critical"},
        "annotations": {"summary": f"bench alert {key}"},
    }


def _am_throughput(tmp: Path, receiver_port: int, tag: str) -> float:
    am = Alertmanager(tmp, receiver_port)
    try:

        async def post_all() -> None:
            batches = [
                [_am_alert(f"{tag}-{i}") for i in range(j, min(j + BATCH, N))]
                for j in range(0, N, BATCH)
            ]
            url = f"http://127.0.0.1:{am.port}/api/v2/alerts"
            async with aiohttp.ClientSession() as session:

                async def client(mine: list[list[dict[str, Any]]]) -> None:
                    for batch in mine:
                        async with session.post(url, json=batch) as resp:
                            resp.raise_for_status()

                await asyncio.gather(*(client(batches[c::CLIENTS]) for c in range(CLIENTS)))

        asyncio.run(post_all())
        return _rate(wait_arrivals(receiver_port, N, 120))
    finally:
        am.close()


def _am_latency(tmp: Path, receiver_port: int, tag: str) -> list[float]:
    am = Alertmanager(tmp, receiver_port)
    try:
        started: dict[str, float] = {}

        async def offer() -> None:
            url = f"http://127.0.0.1:{am.port}/api/v2/alerts"
            async with aiohttp.ClientSession() as session:
                tasks = []
                t0 = time.perf_counter()
                for i in range(RATE * LATENCY_SECONDS):
                    await asyncio.sleep(max(0.0, t0 + i / RATE - time.perf_counter()))
                    key = f"{tag}-{i}"
                    started[key] = time.time()
                    tasks.append(asyncio.create_task(session.post(url, json=[_am_alert(key)])))
                for resp in await asyncio.gather(*tasks):
                    resp.release()

        asyncio.run(offer())
        seen = wait_arrivals(receiver_port, len(started), 30)
        return [(seen[k] - started[k]) * 1000 for k in started if k in seen]
    finally:
        am.close()


class Worker:
    def __init__(self, env: dict[str, str], processes: int = 1) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alert_delivery",
                "worker",
                "--id",
                "bench",
                "--poll-interval",
                "1",
                "--processes",
                str(processes),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def ready(self, url: str, processes: int = 1) -> None:
        """Wait until every worker process listens (its heartbeat row is written after LISTEN):
        start-up is not measured, even when a loaded machine makes it slow."""
        deadline = time.monotonic() + 60
        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM alert_delivery.workers WHERE stopped_at IS NULL"
                ).fetchone()
                if row is not None and row[0] >= processes:
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("the worker did not start")

    def close(self) -> None:
        _stop(self.proc)


def _insert_alerts_and_rows(url: str, hooks: list[int], tag: str) -> None:
    """10,000 real alerts and one new-style queue row each (body rendered at first claim)."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO alert_delivery.alerts (fingerprint, content_hash, labels, annotations,"
            " source, operation_type, alert_type, severity, title, description)"
            " SELECT md5(%(tag)s || i), md5(%(tag)s || i),"
            " jsonb_build_object('alertname', 'BenchAlert', 'id', %(tag)s || '-' || i,"
            "   'severity', 'CRITICAL'),"
            " jsonb_build_object('title', 'bench alert ' || i), 'bench', 'op-' || (i %% 33),"
            " 'BENCH', 'CRITICAL', 'bench alert ' || i, 'p99 above the baseline'"
            " FROM generate_series(0, %(n)s - 1) i",
            {"tag": tag, "n": N},
        )
        conn.execute(
            "INSERT INTO alert_delivery.delivery_queue (alert_id, alert_ids, webhook_id, event)"
            " SELECT a.alert_id, ARRAY[a.alert_id], (%(hooks)s::bigint[])[1 + a.alert_id %% %(k)s],"
            " 'trigger' FROM alert_delivery.alerts a WHERE a.labels ->> 'id' LIKE %(tag)s || '-%%'"
            " ORDER BY a.alert_id",
            {"hooks": hooks, "k": len(hooks), "tag": tag},
        )
        conn.execute("NOTIFY alert_delivery_queue")
        conn.commit()


def _env(url: str, key: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ALERT_DELIVERY_DATABASE_URL=url,
        ALERT_DELIVERY_SECRET_KEYS=key,
        ALERT_DELIVERY_ALLOWED_TARGETS="127.0.0.1/32",
    )
    return env


def _ours_throughput(
    ctx: BenchContext, receiver_port: int, key: str, tag: str, processes: int = 1
) -> float:
    url = ctx.fresh_database()
    env = _env(url, key)
    settings = load_settings(env)
    hooks = [
        add_webhook(
            url,
            name=f"b{i}",
            kind="webhook",
            settings=settings,
            url=f"http://127.0.0.1:{receiver_port}/hook/{i}",
            rate_limit_per_s=100_000.0,
        ).webhook_id
        for i in range(N_WEBHOOKS)
    ]
    worker = Worker(env, processes)
    try:
        worker.ready(url, processes)
        _insert_alerts_and_rows(url, hooks, tag)
        return _rate(wait_arrivals(receiver_port, N, 180))
    finally:
        worker.close()


def _ours_latency(ctx: BenchContext, receiver_port: int, key: str, tag: str) -> list[float]:
    url = ctx.fresh_database()
    env = _env(url, key)
    settings = load_settings(env)
    add_webhook(
        url,
        name="pager",
        kind="webhook",
        settings=settings,
        url=f"http://127.0.0.1:{receiver_port}/hook/pager",
        rate_limit_per_s=100_000.0,
    )
    with psycopg.connect(url) as conn:
        add_rule(
            conn,
            "pages",
            match=["alertname=BenchAlert"],
            webhooks=["pager"],
            priority=1,
            group_wait_s=0,
        )
        conn.commit()
    worker = Worker(env)
    started: dict[str, float] = {}
    try:
        worker.ready(url)
        with psycopg.connect(url) as conn:
            t0 = time.perf_counter()
            for i in range(RATE * LATENCY_SECONDS):
                time.sleep(max(0.0, t0 + i / RATE - time.perf_counter()))
                alert_key = f"{tag}-{i}"
                started[alert_key] = time.time()
                with conn.transaction():
                    raise_alert(
                        conn,
                        labels={"alertname": "BenchAlert", "id": alert_key, "severity": "critical"},
                    )
        seen = wait_arrivals(receiver_port, len(started), 30)
    finally:
        worker.close()
    return [(seen[k] - started[k]) * 1000 for k in started if k in seen]


def _spread(values: list[float]) -> str:
    return f"median of {len(values)}, range {min(values):,.0f}-{max(values):,.0f}"


def run(ctx: BenchContext) -> list[BenchRow]:
    if _alertmanager_binary() is None:
        return [
            BenchRow(
                "alertmanager: skipped (not installed)",
                0,
                0.0,
                note="apt-get install prometheus-alertmanager",
            )
        ]
    key = Fernet.generate_key().decode()
    am_rates: list[float] = []
    our_rates: list[float] = []
    our_rates2: list[float] = []
    am_lat: list[list[float]] = []
    our_lat: list[list[float]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        receiver, port = start_receiver(tmp, LABELS_RECEIVER, module="bench_labels_receiver")
        try:
            for r in range(ROUNDS):
                # Interleaved: each round runs both contenders back to back.
                am_rates.append(_am_throughput(tmp, port, f"amt{r}"))
                ctx.settle()
                our_rates.append(_ours_throughput(ctx, port, key, f"ust{r}"))
                ctx.settle()
                our_rates2.append(_ours_throughput(ctx, port, key, f"us2t{r}", processes=2))
                ctx.settle()
                am_lat.append(_am_latency(tmp, port, f"aml{r}"))
                our_lat.append(_ours_latency(ctx, port, key, f"usl{r}"))
                ctx.settle()
        finally:
            _stop(receiver)
    am_rate, our_rate = statistics.median(am_rates), statistics.median(our_rates)
    ratios = [o / a for o, a in zip(our_rates, am_rates, strict=True) if a]
    ratios2 = [o / a for o, a in zip(our_rates2, am_rates, strict=True) if a]
    results: dict[str, Any] = {
        "cores": os.cpu_count(),
        "throughput_per_s": {
            "alertmanager": am_rates,
            "alert_delivery_worker": our_rates,
            "alert_delivery_worker_2_processes": our_rates2,
        },
        "load_average": os.getloadavg(),
        "latency_ms": {
            name: [
                {q: percentile(lat, p) for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
                for lat in rounds
            ]
            for name, rounds in (("alertmanager", am_lat), ("alert_delivery_worker", our_lat))
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "alertmanager.json").write_text(json.dumps(results, indent=2))

    def lat_row(name: str, rounds: list[list[float]], target: str, met: bool | None) -> BenchRow:
        median_round = sorted(rounds, key=lambda lat: percentile(lat, 0.5))[len(rounds) // 2]
        p50s = [percentile(lat, 0.5) for lat in rounds]
        p99s = [percentile(lat, 0.99) for lat in rounds]
        return BenchRow(
            name,
            len(median_round),
            float(LATENCY_SECONDS),
            target=target,
            met=met,
            latencies_ms=median_round,
            note=f"median round; p50 {min(p50s):.2f}-{max(p50s):.2f}, "
            f"p99 {min(p99s):.2f}-{max(p99s):.2f} ms over {len(rounds)} rounds",
        )

    am_p50 = statistics.median(percentile(lat, 0.5) for lat in am_lat)
    am_p99 = statistics.median(percentile(lat, 0.99) for lat in am_lat)
    our_p50 = statistics.median(percentile(lat, 0.5) for lat in our_lat)
    our_p99 = statistics.median(percentile(lat, 0.99) for lat in our_lat)
    return [
        BenchRow(
            "alertmanager 0.25: throughput (in memory)", N, N / am_rate, note=_spread(am_rates)
        ),
        BenchRow(
            "worker: throughput beside Alertmanager",
            N,
            N / our_rate,
            target=">= 1.5x Alertmanager",
            met=statistics.median(ratios) >= 1.5,
            note=f"{_spread(our_rates)}; ratio {statistics.median(ratios):.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f})",
        ),
        BenchRow(
            "worker --processes 2: throughput",
            N,
            N / statistics.median(our_rates2),
            note=f"{_spread(our_rates2)}; ratio {statistics.median(ratios2):.2f}x "
            f"({min(ratios2):.2f}-{max(ratios2):.2f}), load {os.getloadavg()[0]:.1f}",
        ),
        lat_row("alertmanager 0.25: latency @ 200/s", am_lat, "", None),
        lat_row(
            "worker: latency @ 200/s (call -> receipt)",
            our_lat,
            "p50 <= AM + 0.5 ms, p99 <= AM + 1 ms",
            our_p50 <= am_p50 + 0.5 and our_p99 <= am_p99 + 1.0,
        ),
    ]
