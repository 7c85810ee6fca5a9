"""``alert-delivery metrics load FILE [--strict] [--format csv|jsonl]``.

Exit codes: 0 every row loaded; 1 some rows were rejected (the valid ones loaded, or with
``--strict`` none did) and the report lists them; 2 a user mistake such as a missing file or an
unknown format (one line on stderr).
"""

import argparse
import sys
from pathlib import Path

from alert_delivery.db import connect, resolve_database_url
from alert_delivery.detection.ingest import LoadReport, detect_format, load_file
from alert_delivery.errors import InvalidInput

EXIT_REJECTED = 1
MAX_LISTED = 100


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    metrics = sub.add_parser("metrics", help="load performance metrics")
    metrics_sub = metrics.add_subparsers(dest="metrics_command", metavar="ACTION", required=True)
    load = metrics_sub.add_parser("load", help="load a CSV or JSON Lines file through COPY")
    load.add_argument("file", metavar="FILE", help="a .csv, .jsonl or .ndjson file")
    load.add_argument("--strict", action="store_true", help="load nothing when any row is rejected")
    load.add_argument("--format", choices=("csv", "jsonl"), help="override the file extension")
    load.set_defaults(handler=cmd_load)


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
