"""Shared benchmark plumbing: a migrated database per benchmark and the results table."""

import os
import resource
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from alert_delivery.db.connection import with_dbname
from alert_delivery.db.embedded import ensure_embedded
from alert_delivery.db.migrations import upgrade

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BenchRow:
    """One line of the table. ``count`` items took ``seconds``; latencies are per item, in ms."""

    name: str
    count: int
    seconds: float
    target: str = ""
    met: bool | None = None
    latencies_ms: Sequence[float] = field(default_factory=list)
    note: str = ""

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine so far, from /proc/stat (0, 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    # user nice system idle iowait irq softirq steal; guest time is already in user and nice.
    fields = fields[:8]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def busy_share(start: tuple[int, int], end: tuple[int, int]) -> float:
    """The share of the machine's CPU time (all cores) that was busy between two ``cpu_ticks``."""
    total = end[1] - start[1]
    return (end[0] - start[0]) / total if total > 0 else 0.0


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class BenchContext:
    """Gives each benchmark a fresh, migrated database on the bench server."""

    def __init__(self) -> None:
        self.server_url = os.environ.get("BENCH_DATABASE_URL") or ensure_embedded(
            ROOT / ".alert_delivery" / "bench"
        )
        self._created: list[str] = []

    def fresh_database(self) -> str:
        name = f"ad_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"'.encode())
        self._created.append(name)
        url = with_dbname(self.server_url, name)
        with psycopg.connect(url, autocommit=True) as conn:
            upgrade(conn)
        return url

    def settle(self, timeout_s: float = 30.0) -> None:
        """Start the next measurement on a quiet server: the databases measured so far are
        dropped (so autovacuum has nothing of theirs left to clean), a checkpoint flushes
        their dirty pages, and running autovacuum workers are waited for. On two cores a
        neighbour's vacuum or checkpoint moved the delivery throughput by 5-10 %."""
        self.close()
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute("CHECKPOINT")
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                ).fetchone()
                if not row or not row[0]:
                    break
                time.sleep(0.1)

    def close(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            for name in self._created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        self._created.clear()


def format_table(rows: Sequence[tuple[BenchRow, float]]) -> str:
    header = (
        f"{'benchmark':<46} {'n':>9} {'seconds':>9} {'per s':>10} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'peak MiB':>9}  target"
    )
    lines = [header, "-" * len(header)]
    for row, mem in rows:
        lat = row.latencies_ms
        p50, p95, p99 = (percentile(lat, q) for q in (0.5, 0.95, 0.99)) if lat else ("",) * 3
        verdict = "" if row.met is None else (" ok" if row.met else " MISSED")
        lines.append(
            f"{row.name:<46} {row.count:>9} {row.seconds:>9.3f} {row.throughput:>10.0f} "
            f"{_ms(p50):>8} {_ms(p95):>8} {_ms(p99):>8} {mem:>9.0f}  {row.target}{verdict}"
            + (f"  ({row.note})" if row.note else "")
        )
    return "\n".join(lines)


def _ms(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.2f}"
