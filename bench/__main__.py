"""``python -m bench [NAME ...]``: run the benchmarks and print one table."""

import importlib
import os
import pkgutil
import sys
import time
import traceback

from bench.common import BenchContext, BenchRow, format_table, peak_rss_mib


def main(selected: list[str]) -> int:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([os.path.dirname(__file__)])
        if m.name.startswith("bench_")
    )
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    ctx = BenchContext()
    rows: list[tuple[BenchRow, float]] = []
    started = time.perf_counter()
    failed: list[str] = []
    try:
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            print(f"running {name} ...", file=sys.stderr, flush=True)
            ctx.settle()
            try:
                for row in module.run(ctx):
                    rows.append((row, peak_rss_mib()))
            except Exception:
                # One broken benchmark does not cost the others' figures: its traceback, a row
                # saying so, and a non-zero exit.
                traceback.print_exc()
                failed.append(name)
                rows.append((BenchRow(f"{name}: FAILED (traceback above)", 0, 0.0), 0.0))
    finally:
        ctx.close()
    elapsed = time.perf_counter() - started
    print(f"\nalert-delivery benchmarks — {os.cpu_count()} cores, {elapsed:.0f} s")
    print(format_table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
