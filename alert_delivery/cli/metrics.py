"""``alert-delivery metrics load | baselines | detect``.

``load FILE [--strict] [--format csv|jsonl]`` exit codes: 0 every row loaded; 1 some rows were
rejected (the valid ones loaded, or with ``--strict`` none did) and the report lists them; 2 a user
mistake such as a missing file or an unknown format (one line on stderr).

``baselines`` and ``detect`` run the same code as the Dagster assets, for scripts and for hours
the UI is not at hand; ``detect`` walks the hours of ``[--start, --end)`` like a backfill.
"""

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from alert_delivery.db import connect, resolve_database_url
from alert_delivery.detection.anomalies import detect_anomalies
from alert_delivery.detection.baselines import recalculate_baselines
from alert_delivery.detection.correlations import detect_correlations
from alert_delivery.detection.ingest import LoadReport, detect_format, load_file
from alert_delivery.detection.rollups import HOUR
from alert_delivery.detection.settings import BaselineSettings
from alert_delivery.errors import InvalidInput
from alert_delivery.inputs import parse_time

EXIT_REJECTED = 1
MAX_LISTED = 100


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    metrics = sub.add_parser("metrics", help="load metrics, recalculate baselines, detect")
    metrics_sub = metrics.add_subparsers(dest="metrics_command", metavar="ACTION", required=True)
    load = metrics_sub.add_parser("load", help="load a CSV or JSON Lines file through COPY")
    load.add_argument("file", metavar="FILE", help="a .csv, .jsonl or .ndjson file")
    load.add_argument("--strict", action="store_true", help="load nothing when any row is rejected")
    load.add_argument("--format", choices=("csv", "jsonl"), help="override the file extension")
    load.set_defaults(handler=cmd_load)
    base = metrics_sub.add_parser("baselines", help="recalculate every operation's baseline")
    base.add_argument("--window-days", type=int, default=7, help="rolling window (1-365 days)")
    base.add_argument("--window-end", help="ISO timestamp; default: start of the current UTC day")
    base.set_defaults(handler=cmd_baselines)
    detect = metrics_sub.add_parser("detect", help="detect anomalies and correlations per hour")
    detect.add_argument("--start", required=True, help="first hour (ISO timestamp, UTC if naive)")
    detect.add_argument("--end", help="end of the range, exclusive (default: start + 1 h)")
    detect.set_defaults(handler=cmd_detect)


def print_report(report: LoadReport) -> None:
    for rejection in report.rejected[:MAX_LISTED]:
        print(f"rejected {rejection}", file=sys.stderr)
    if len(report.rejected) > MAX_LISTED:
        print(f"... and {len(report.rejected) - MAX_LISTED} more rejected rows", file=sys.stderr)
    if report.strict and report.rejected:
        print(
            f"{report.file}: --strict: nothing loaded, {len(report.rejected)} rows rejected",
            file=sys.stderr,
        )
    else:
        print(f"{report.file}: loaded {report.loaded} rows, rejected {len(report.rejected)}")


def cmd_load(args: argparse.Namespace) -> int:
    # Refuse a bad path or format before connecting (which may start the embedded server).
    path = Path(args.file)
    detect_format(path, args.format)
    if not path.is_file():
        raise InvalidInput("no such file", where=str(path))
    with connect(resolve_database_url()) as conn:
        report = load_file(conn, args.file, strict=args.strict, fmt=args.format)
        conn.commit()
    print_report(report)
    return EXIT_REJECTED if report.rejected else 0


def cmd_baselines(args: argparse.Namespace) -> int:
    settings = BaselineSettings(window_days=args.window_days)
    if args.window_end:
        end = parse_time(args.window_end, where="--window-end")
    else:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with connect(resolve_database_url()) as conn:
        run = recalculate_baselines(conn, window_end=end, settings=settings)
        conn.commit()
    print(
        f"baselines run {run.run_id} {run.status}: {len(run.updated)} updated, "
        f"{len(run.kept)} kept, {len(run.skipped)} skipped, {len(run.failed)} failed"
    )
    for error in run.errors:
        print(f"  {error['operation']}: {error['reason']}", file=sys.stderr)
    if run.alert:
        print(f"  alert {run.alert.alert_id} BASELINE_RECALC_ERROR: {run.alert.outcome}")
    return 0 if run.status == "succeeded" else 1


def cmd_detect(args: argparse.Namespace) -> int:
    start = parse_time(args.start, where="--start")
    end = parse_time(args.end, where="--end") if args.end else start + HOUR
    if start.minute or start.second or start.microsecond or start >= end:
        raise InvalidInput("must be a whole hour before --end", where="--start")
    hours = []
    hour = start
    while hour < end:
        hours.append(hour)
        hour += HOUR
    with connect(resolve_database_url()) as conn:
        for hour in hours:
            found = detect_anomalies(conn, hour, hour + HOUR)
            pairs = detect_correlations(conn, hour, hour + HOUR)
            conn.commit()
            severities = ", ".join(
                f"{found.count(s)} {s}" for s in ("CRITICAL", "WARNING", "INFO") if found.count(s)
            )
            print(
                f"{hour.isoformat()}: {len(found.anomalies)} anomalies"
                f"{f' ({severities})' if severities else ''}, {len(pairs.pairs)} pairs, "
                f"{len(pairs.bottlenecks)} bottlenecks"
            )
    return 0
