"""``--log-format json``: one JSON object per line (time, level, logger, message) for log
shippers. Messages are the same text the plain format prints, which never holds a URL or secret
(webhook URLs are redacted wherever they are shown)."""

import argparse
import json
import logging
from datetime import UTC, datetime

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


def add_option(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """On the main parser (default text) and on each long-running command (worker, ui)."""
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="text" if top_level else argparse.SUPPRESS,
        help="log lines as text (default) or one JSON object per line",
    )


def configure(level: int, log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
