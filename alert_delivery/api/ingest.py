"""Alerts in: check each one, raise the valid ones in one set-based call, resolve the ended ones.

``check_alert`` turns one alert of any dialect into the document ``raise_alerts`` takes and
raises ``InvalidInput`` naming the field (``alerts[3].labels.severity``). ``ingest`` then raises
the alerts of a batch with a single ``raise_alerts`` call inside a savepoint (an alert whose
ends_at has passed resolves there); if the
SQL still refuses one (what Python does not check), only that alert is set aside and the call is
repeated for the rest, unless the client asked for all or nothing. Measured on 100-alert
batches: one call for the batch is ~10x faster than a savepoint and a call per alert (see
bench/bench_api.py), so the per-alert path is only the fallback.
"""

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq

from alert_delivery.alerting import lifecycle
from alert_delivery.alerting.labels import SEVERITIES, validate_labels
from alert_delivery.alerting.producer import raise_alerts_async
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

# The well-known names for the fields in each dialect (errors use the client's spelling).
NATIVE_NAMES = {
    "starts_at": "starts_at",
    "ends_at": "ends_at",
    "generator_url": "generator_url",
}
ALERTMANAGER_NAMES = {
    "starts_at": "startsAt",
    "ends_at": "endsAt",
    "generator_url": "generatorURL",
}
MAX_ANNOTATION_CHARS = 1_000_000
_AT = re.compile(r"^alerts\[(\d+)\](.*)$", re.DOTALL)


@dataclass
class Item:
    """One checked alert: its index in the request and the document for ``raise_alerts``."""

    index: int
    doc: dict[str, Any]
    labels: dict[str, str]
    ends_at: datetime | None
    names: Mapping[str, str] = field(default_factory=lambda: NATIVE_NAMES)


@dataclass
class Outcome:
    index: int
    alert_id: int | None = None
    outcome: str | None = None
    field: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_time(value: object, *, where: str) -> datetime | None:
    """An RFC 3339 / ISO 8601 time with a zone; Go's zero time (year 1) and null mean unset."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be an RFC 3339 time string", where=where)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"is not an RFC 3339 time: {value[:60]!r}", where=where) from None
    if parsed.tzinfo is None:
        raise InvalidInput("needs a time zone (e.g. 2026-01-01T10:00:00Z)", where=where)
    if parsed.year <= 1:
        return None
    return parsed


def check_alert(
    raw: object,
    index: int,
    *,
    names: Mapping[str, str] = NATIVE_NAMES,
    extra: Mapping[str, Any] | None = None,
    allow_unknown: bool = False,
) -> Item:
    """One alert, checked; ``extra`` fields (details, ...) are passed to SQL as they are."""
    at = f"alerts[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidInput("must be a JSON object", where=at)
    known = {"labels", "annotations", *names.values()}
    if not allow_unknown:
        for key in raw:
            if key not in known and key not in (extra or {}):
                raise InvalidInput("is not a known field", where=f"{at}.{str(key)[:60]}")
    labels = validate_labels(raw.get("labels"), where=f"{at}.labels")
    severity = labels.get("severity")
    if severity is not None and severity.strip().upper() not in SEVERITIES:
        raise InvalidInput(
            f"must be info, warning or critical (any case), not {severity[:40]!r}",
            where=f"{at}.labels.severity",
        )
    annotations = raw.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise InvalidInput("must be an object of strings", where=f"{at}.annotations")
    for key, value in annotations.items():
        if not isinstance(value, str):
            raise InvalidInput("must be a string", where=f"{at}.annotations.{str(key)[:60]}")
        if len(value) > MAX_ANNOTATION_CHARS:
            raise InvalidInput(
                f"is longer than {MAX_ANNOTATION_CHARS} characters",
                where=f"{at}.annotations.{str(key)[:60]}",
            )
    starts = parse_time(raw.get(names["starts_at"]), where=f"{at}.{names['starts_at']}")
    ends = parse_time(raw.get(names["ends_at"]), where=f"{at}.{names['ends_at']}")
    generator = raw.get(names["generator_url"])
    if generator is not None and not isinstance(generator, str):
        raise InvalidInput("must be a string", where=f"{at}.{names['generator_url']}")
    if generator is not None and len(generator) > 2000:
        raise InvalidInput("is longer than 2000 characters", where=f"{at}.{names['generator_url']}")
    doc: dict[str, Any] = {"labels": labels, "annotations": dict(annotations)}
    if starts is not None:
        doc["starts_at"] = starts.isoformat()
    if ends is not None:
        doc["ends_at"] = ends.isoformat()
    if generator:
        doc["generator_url"] = generator
    for key, value in (extra or {}).items():
        if key in raw:
            doc[key] = raw[key] if value is None else value
        elif value is not None:
            doc[key] = value
    return Item(index, doc, labels, ends, names)


def _client_field(where: str | None, item: Item) -> str:
    """SQL's ``alerts[j].ends_at`` for the j-th alert of a call, as the client spelled it."""
    found = _AT.match(where or "")
    rest = found.group(2) if found else (f".{where}" if where else "")
    for sql_name, client_name in item.names.items():
        if rest == f".{sql_name}" or rest.startswith(f".{sql_name}."):
            rest = f".{client_name}{rest[len(sql_name) + 1 :]}"
    return f"alerts[{item.index}]{rest}"


async def _raise_firing(
    conn: psycopg.AsyncConnection[Any], items: list[Item], *, atomic: bool
) -> dict[int, Outcome]:
    pending = list(items)
    results: dict[int, Outcome] = {}
    # One statement: on its own (autocommit, nothing open) it commits or writes nothing, so a
    # refused alert is left out and the rest raised again; inside a transaction a savepoint
    # gives the same.
    alone = conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE
    while pending:
        try:
            async with contextlib.nullcontext() if alone else conn.transaction():
                raised = await raise_alerts_async(conn, [i.doc for i in pending])
        except InvalidInput as exc:
            found = _AT.match(exc.where or "")
            j = int(found.group(1)) if found else None
            if j is None or j >= len(pending):
                j = 0 if len(pending) == 1 else None
            if j is None:
                raise
            bad = pending.pop(j)
            message = str(exc).removeprefix(f"{exc.where}: ") if exc.where else str(exc)
            if atomic:
                raise InvalidInput(message, where=_client_field(exc.where, bad)) from None
            results[bad.index] = Outcome(
                bad.index, field=_client_field(exc.where, bad), error=message
            )
            continue
        for item, result in zip(pending, raised, strict=True):
            results[item.index] = Outcome(item.index, result.alert_id, result.outcome)
        break
    return results


async def ingest(
    conn: psycopg.AsyncConnection[Any], items: Sequence[Item], *, atomic: bool = False
) -> dict[int, Outcome]:
    """Raise checked alerts in request order: in the caller's transaction, or on an idle
    autocommit connection as one statement that commits on its own. An alert whose
    ``ends_at`` has passed resolves the open alert of its label set (outcome ``resolved``,
    ``alert_id`` None when none was open): the SQL raise path does that."""
    return await _raise_firing(conn, list(items), atomic=atomic)


def expire_ended(conn: psycopg.Connection, *, limit: int = 1000) -> list[int]:
    """Resolve open alerts whose ``endsAt`` has passed with no re-send (Alertmanager's timeout:
    a Prometheus that stopped sending, a rule that was removed)."""
    ids = [
        int(r[0])
        for r in conn.execute(query("api", "ended_open_alerts"), {"limit": limit}).fetchall()
    ]
    for alert_id in ids:
        lifecycle.resolve(conn, alert_id, by="endsAt passed")
    return ids
