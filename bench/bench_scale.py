"""Scale: claim latency and engine throughput with a big queue and a big log, against a small one.

Two databases on the bench server: SMALL (10,000 rows pending, 10,000 in delivery_log) and BIG
(1,000,000 pending, 10,000,000 in delivery_log by default; ``BENCH_SCALE_PENDING`` and
``BENCH_SCALE_LOG_ROWS`` set other sizes). Each is built with one INSERT ... SELECT
generate_series per table (logged tables, as in production). The log rows are spread over the
last 30 days, so they land in delivery_log's daily partitions as a month of traffic would: rows
older than the migration in ``delivery_log_history``, today's in today's partition.

Every round measures both sizes, alternating which goes first:
- claim: the engine's claim statement (``sql/queries/delivery.sql``, name ``claim``) of 500 rows,
  run CLAIM_SAMPLES times, each in a transaction rolled back, so every sample sees the same queue;
- drain: an Engine (``alert_delivery.delivery.engine``) claims, POSTs to a loopback receiver and
  logs 10,000 rows over 50 webhooks; rows/s. The queue is topped up afterwards (by as many new
  rows), so every round starts at the same size.
Queue rows are legacy-style (payload set, body NULL: the engine sends the payload as it is), so
the big queue needs no million alerts; rendering cost is the same at both sizes anyway.
Target: at BIG, the median claim latency and the median drain throughput are within 20 % of
SMALL's. Median and min-max over BENCH_ROUNDS rounds (default 3).
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet

from alert_delivery.config import load_settings
from alert_delivery.db.queries import query
from alert_delivery.delivery.engine import Engine, EngineConfig, drain
from alert_delivery.delivery.loop import run as run_loop
from alert_delivery.delivery.registry import add_webhook
from bench.common import BenchContext, BenchRow
from bench.receiver import start_receiver

SMALL = (10_000, 10_000)
DRAIN = 10_000
N_WEBHOOKS = 50
CLAIM_LIMIT = 500
CLAIM_SAMPLES = 30
PAYLOAD = '{"text": "' + "x" * 200 + '", "severity": "WARNING", "operation": "merge"}'


def _sizes() -> tuple[int, int]:
    pending = int(os.environ.get("BENCH_SCALE_PENDING") or 1_000_000)
    log_rows = int(os.environ.get("BENCH_SCALE_LOG_ROWS") or 10_000_000)
    return pending, log_rows


def _enqueue(conn: psycopg.Connection, hooks: list[int], n: int) -> None:
    """n due rows, after every row already queued (the queue is a FIFO by next_attempt_at)."""
    conn.execute(
        "INSERT INTO alert_delivery.delivery_queue (webhook_id, event, seq, payload,"
        " next_attempt_at)"
        " SELECT (%(hooks)s::bigint[])[1 + g %% %(k)s], 'trigger', g, %(payload)s::jsonb,"
        " now() - interval '1 day' + g * interval '1 microsecond'"
        " FROM generate_series(1, %(n)s) g",
        {"hooks": hooks, "k": len(hooks), "payload": PAYLOAD, "n": n},
    )


def build(url: str, port: int, env: dict[str, str], pending: int, log_rows: int) -> list[int]:
    """Webhooks, ``pending`` due queue rows and ``log_rows`` log rows; returns the webhook ids."""
    settings = load_settings(env)
    hooks = [
        add_webhook(
            url,
            name=f"scale-{i}",
            kind="webhook",
            url=f"http://127.0.0.1:{port}/hook/{i}",
            settings=settings,
            rate_limit_per_s=100_000.0,
        ).webhook_id
        for i in range(N_WEBHOOKS)
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        _enqueue(conn, hooks, pending)
        # One month of traffic: nine attempts delivered for every bookkeeping row.
        conn.execute(
            "INSERT INTO alert_delivery.delivery_log (delivery_id, webhook_id, event, attempt,"
            " http_status, latency_ms, worker_id, created_at)"
            " SELECT g, (%(hooks)s::bigint[])[1 + g %% %(k)s],"
            " CASE WHEN g %% 10 = 0 THEN 'queued' ELSE 'delivered' END, 1, 200,"
            " CASE WHEN g %% 10 = 0 THEN NULL ELSE (g %% 97)::float8 END, 'scale',"
            " now() - make_interval(secs => (g::float8 / %(n)s) * 30 * 86400)"
            " FROM generate_series(1, %(n)s) g",
            {"hooks": hooks, "k": len(hooks), "n": log_rows},
        )
        conn.execute("VACUUM ANALYZE alert_delivery.delivery_queue")
        conn.execute("VACUUM ANALYZE alert_delivery.delivery_log")
    return hooks


def claim_ms(url: str) -> list[float]:
    """The claim statement, CLAIM_SAMPLES times, each rolled back."""
    params = {
        "min_age_s": 0.0,
        "limit": CLAIM_LIMIT,
        "lease_s": 120.0,
        "worker_id": "scale-claim",
        "cooldown_s": 60.0,
        "only": None,
    }
    sql = query("delivery", "claim")
    out = []
    with psycopg.connect(url) as conn:
        for _ in range(CLAIM_SAMPLES):
            started = time.perf_counter()
            rows = conn.execute(sql, params).fetchall()
            out.append((time.perf_counter() - started) * 1000.0)
            conn.rollback()
            assert rows, "nothing claimed"
    return out


def drain_rate(url: str, env: dict[str, str]) -> tuple[int, float]:
    settings = load_settings(env)

    async def go() -> tuple[int, float]:
        engine = await Engine.open(url, worker_id="scale", config=EngineConfig(), settings=settings)
        try:
            started = time.perf_counter()
            result = await drain(engine, limit=DRAIN)
            return result.delivered, time.perf_counter() - started
        finally:
            await engine.close()

    return run_loop(go())


def quiet(server_url: str, timeout_s: float = 30.0) -> None:
    """A checkpoint, then wait for running autovacuum workers (as BenchContext.settle)."""
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("CHECKPOINT")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            ).fetchone()
            if not row or not row[0]:
                return
            time.sleep(0.1)


def _spread(values: list[float], fmt: str) -> str:
    return f"median {fmt.format(statistics.median(values))}, range " + "-".join(
        fmt.format(v) for v in (min(values), max(values))
    )


def run(ctx: BenchContext) -> list[BenchRow]:
    rounds = int(os.environ.get("BENCH_ROUNDS") or 3)
    pending, log_rows = _sizes()
    env = {
        "ALERT_DELIVERY_SECRET_KEYS": Fernet.generate_key().decode(),
        "ALERT_DELIVERY_ALLOWED_TARGETS": "127.0.0.1/32",
    }
    with tempfile.TemporaryDirectory() as tmp:
        env["ALERT_DELIVERY_HOME"] = tmp
        receiver, port = start_receiver(Path(tmp))
        try:
            small_url, big_url = ctx.fresh_database(), ctx.fresh_database()
            sizes = {"small": (small_url, *SMALL), "big": (big_url, pending, log_rows)}
            hooks: dict[str, list[int]] = {}
            build_s: dict[str, float] = {}
            for name, (url, n_pending, n_log) in sizes.items():
                started = time.perf_counter()
                hooks[name] = build(url, port, env, n_pending, n_log)
                build_s[name] = time.perf_counter() - started
                print(f"  scale: built {name} in {build_s[name]:.0f} s", file=sys.stderr)
            claims: dict[str, list[float]] = {"small": [], "big": []}
            rates: dict[str, list[float]] = {"small": [], "big": []}
            delivered: dict[str, int] = {"small": 0, "big": 0}
            for r in range(rounds):
                order = ["small", "big"] if r % 2 == 0 else ["big", "small"]
                for name in order:
                    url = sizes[name][0]
                    quiet(ctx.server_url)
                    claims[name].append(statistics.median(claim_ms(url)))
                    quiet(ctx.server_url)
                    n, seconds = drain_rate(url, env)
                    delivered[name] += n
                    rates[name].append(n / seconds)
                    with psycopg.connect(url, autocommit=True) as conn:
                        _enqueue(conn, hooks[name], n)
                        conn.execute("VACUUM ANALYZE alert_delivery.delivery_queue")
        finally:
            receiver.terminate()
            receiver.wait(10)
    claim_ratio = statistics.median(claims["big"]) / statistics.median(claims["small"])
    rate_ratio = statistics.median(rates["big"]) / statistics.median(rates["small"])
    every = all(d == DRAIN * rounds for d in delivered.values())
    label = f"{pending / 1e6:g} M pending, {log_rows / 1e6:g} M log"
    load = f"load {os.getloadavg()[0]:.1f}"
    return [
        BenchRow(
            f"scale: claim {CLAIM_LIMIT}, 10 k pending, 10 k log",
            CLAIM_LIMIT,
            statistics.median(claims["small"]) / 1000.0,
            note=f"ms per claim {_spread(claims['small'], '{:.2f}')}, {rounds} rounds",
        ),
        BenchRow(
            f"scale: claim {CLAIM_LIMIT}, {label}",
            CLAIM_LIMIT,
            statistics.median(claims["big"]) / 1000.0,
            target="<= 1.2x the 10 k claim",
            met=claim_ratio <= 1.2,
            note=f"{claim_ratio:.2f}x; ms per claim {_spread(claims['big'], '{:.2f}')},"
            f" built in {build_s['big']:.0f} s, {load}",
        ),
        BenchRow(
            "scale: engine drain 10 k, 10 k pending, 10 k log",
            DRAIN,
            DRAIN / statistics.median(rates["small"]),
            note=f"per s {_spread(rates['small'], '{:.0f}')}",
        ),
        BenchRow(
            f"scale: engine drain 10 k, {label}",
            DRAIN,
            DRAIN / statistics.median(rates["big"]),
            target=">= 0.8x the 10 k drain",
            met=rate_ratio >= 0.8 and every,
            note=f"{rate_ratio:.2f}x; per s {_spread(rates['big'], '{:.0f}')}, {load}",
        ),
    ]
