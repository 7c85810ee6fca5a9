"""Labels, the alert's identity (the Prometheus model), and the fingerprint that hashes them.

An alert is a label set plus annotations. ``source``, ``operation_type``, ``alert_type`` and
``severity`` are well-known labels: detection sets them, and the alerts table keeps them as
columns for its indexes and views. SQL computes the same fingerprint
(``alert_delivery.labels_fingerprint`` in sql/functions/00_text.sql; a test holds them equal).
"""

import hashlib
import re
from collections.abc import Mapping

from alert_delivery.errors import InvalidInput

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_LABELS = 64
MAX_VALUE_BYTES = 1024
WELL_KNOWN = ("source", "operation_type", "alert_type", "severity")
SEVERITIES = ("INFO", "WARNING", "CRITICAL")

_PAIR = "\x1f"  # between a name and its value: neither may contain it (names are identifiers)
_NEXT = "\x1e"  # between pairs


def validate_label_name(name: object, *, where: str) -> str:
    if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
        shown = name if isinstance(name, str) else type(name).__name__
        raise InvalidInput(
            f"invalid label name {str(shown)[:80]!r} (must match [a-zA-Z_][a-zA-Z0-9_]*)",
            where=where,
        )
    return name


def validate_labels(labels: object, *, where: str = "labels") -> dict[str, str]:
    """A checked copy: string names and values, at most 64 labels, values at most 1 KiB."""
    if not isinstance(labels, Mapping):
        raise InvalidInput("must be an object of label names to string values", where=where)
    if not labels:
        raise InvalidInput("needs at least one label", where=where)
    if len(labels) > MAX_LABELS:
        raise InvalidInput(f"has {len(labels)} labels, at most {MAX_LABELS}", where=where)
    checked: dict[str, str] = {}
    for name, value in labels.items():
        validate_label_name(name, where=where)
        if not isinstance(value, str):
            raise InvalidInput(
                f"must be a string, not {type(value).__name__}", where=f"{where}.{name}"
            )
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise InvalidInput(f"is longer than {MAX_VALUE_BYTES} bytes", where=f"{where}.{name}")
        checked[name] = value
    return checked


def parse_label(text: str, *, where: str) -> tuple[str, str]:
    """``name=value`` (the CLI's ``--label``)."""
    name, sep, value = text.partition("=")
    if not sep:
        raise InvalidInput(f"expected name=value, got {text[:80]!r}", where=where)
    return validate_label_name(name.strip(), where=where), value


def add_label(labels: dict[str, str], name: str, value: str, *, where: str) -> None:
    """Set a label once: a name given twice with different values is refused."""
    if name in labels and labels[name] != value:
        raise InvalidInput(
            f"label {name!r} given twice ({labels[name]!r} and {value!r})", where=where
        )
    labels[name] = value


def fingerprint(labels: Mapping[str, str]) -> str:
    """sha256 of the sorted label set: same labels, same alert (dedup layer 1)."""
    text = _NEXT.join(f"{name}{_PAIR}{labels[name]}" for name in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()


def legacy_labels(
    source: str, operation_type: str, alert_type: str, severity: str
) -> dict[str, str]:
    """The label set the four well-known fields make (what detection and old callers raise)."""
    return {
        "source": source,
        "operation_type": operation_type,
        "alert_type": alert_type,
        "severity": severity.upper(),
    }
