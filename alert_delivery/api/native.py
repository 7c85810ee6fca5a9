"""The native API: batches with per-alert outcomes, ack / resolve, an alert and its deliveries.

``POST /api/v1/alerts`` takes ``{"alerts": [...], "atomic": false}`` (or a bare array); each
alert is ``labels``, ``annotations``, ``starts_at``, ``ends_at``, ``generator_url`` and
``details``. The answer lists every alert's ``alert_id`` and ``outcome`` (notified, repeated,
deduplicated, suppressed_duplicate_content, silenced, inhibited, unrouted, resolved) or its
``field`` and ``error``. An invalid alert rejects only itself (200 while at least one was
accepted), or the whole batch with ``"atomic": true`` (400, nothing written).
"""

from typing import Any

import psycopg
from aiohttp import web

from alert_delivery.alerting import lifecycle
from alert_delivery.api import ingest
from alert_delivery.api.errors import ApiError
from alert_delivery.api.state import TOKEN, iso, json_response, read_json, state
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

MAX_BATCH = 10_000
EXTRA = {"details": None}


async def post_alerts(request: web.Request) -> web.Response:
    body = await read_json(request)
    atomic = False
    if isinstance(body, dict):
        unknown = sorted(set(body) - {"alerts", "atomic"})
        if unknown:
            raise ApiError(400, "is not a known field", field=str(unknown[0])[:60])
        atomic_value = body.get("atomic", False)
        if not isinstance(atomic_value, bool):
            raise ApiError(400, "must be true or false", field="atomic")
        atomic = atomic_value
        body = body.get("alerts")
    if not isinstance(body, list) or not body:
        raise ApiError(400, "must be a non-empty array of alerts", field="alerts")
    if len(body) > MAX_BATCH:
        raise ApiError(400, f"has {len(body)} alerts, at most {MAX_BATCH}", field="alerts")
    items: list[ingest.Item] = []
    results: dict[int, ingest.Outcome] = {}
    for i, raw in enumerate(body):
        try:
            items.append(ingest.check_alert(raw, i, extra=EXTRA))
        except InvalidInput as exc:
            if atomic:
                raise
            message = str(exc).removeprefix(f"{exc.where}: ") if exc.where else str(exc)
            results[i] = ingest.Outcome(i, field=exc.where, error=message)
    if items:
        done = await state(request).db.run_async(
            lambda conn: ingest.ingest(conn, items, atomic=atomic)
        )
        results.update(done)
    ordered = [results[i] for i in range(len(body))]
    rejected = sum(1 for r in ordered if not r.ok)
    payload = {
        "accepted": len(ordered) - rejected,
        "rejected": rejected,
        "results": [
            {"index": r.index, "alert_id": r.alert_id, "outcome": r.outcome}
            if r.ok
            else {"index": r.index, "field": r.field, "error": r.error}
            for r in ordered
        ],
    }
    if rejected == len(ordered):
        first = ordered[0]
        payload["error"] = f"{first.field}: {first.error}"
        payload["field"] = first.field
        return json_response(payload, status=400)
    return json_response(payload)


def _alert_id(request: web.Request) -> int:
    text = request.match_info["alert_id"]
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, f"no alert {text[:40]!r}", field="alert_id")
    return int(text)


async def _by(request: web.Request) -> str:
    default = f"api:{request[TOKEN].name}"
    if not request.can_read_body:
        return default
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "must be a JSON object", field="body")
    by = body.get("by", default)
    if not isinstance(by, str) or not by.strip() or len(by) > 200:
        raise ApiError(400, "must be a non-empty string of at most 200 characters", field="by")
    return by.strip()


async def _transition(request: web.Request, action: str) -> web.Response:
    alert_id = _alert_id(request)
    by = await _by(request)

    def act(conn: psycopg.Connection) -> tuple[str, int]:
        row = conn.execute(query("api", "lock_alert"), {"alert_id": alert_id}).fetchone()
        if row is None:
            raise ApiError(404, f"no alert {alert_id}", field="alert_id")
        try:
            with conn.transaction():
                if action == "ack":
                    n = lifecycle.acknowledge(conn, alert_id, by=by)
                else:
                    n = lifecycle.resolve(conn, alert_id, by=by)
        except InvalidInput as exc:
            raise ApiError(409, str(exc).split(": ", 1)[-1], field="alert_id") from None
        status = conn.execute(query("api", "lock_alert"), {"alert_id": alert_id}).fetchone()
        return (str(status[0]) if status else "?"), n

    status, queued = await state(request).db.run(act)
    return json_response({"alert_id": alert_id, "status": status, "notifications_queued": queued})


async def ack(request: web.Request) -> web.Response:
    return await _transition(request, "ack")


async def resolve(request: web.Request) -> web.Response:
    return await _transition(request, "resolve")


def _rows(conn: psycopg.Connection, name: str, alert_id: int) -> list[dict[str, Any]]:
    cur = conn.execute(query("api", name), {"alert_id": alert_id})
    names = [c.name for c in cur.description or ()]
    return [
        {k: (iso(v) if hasattr(v, "astimezone") else v) for k, v in zip(names, r, strict=True)}
        for r in cur.fetchall()
    ]


async def get_alert(request: web.Request) -> web.Response:
    alert_id = _alert_id(request)

    def fetch(conn: psycopg.Connection) -> dict[str, Any]:
        found = _rows(conn, "alert_detail", alert_id)
        if not found:
            raise ApiError(404, f"no alert {alert_id}", field="alert_id")
        alert = found[0]
        alert["deliveries"] = _rows(conn, "alert_deliveries", alert_id)
        log = _rows(conn, "alert_log", alert_id)
        for d in alert["deliveries"]:
            d["log"] = [e for e in log if e["delivery_id"] == d["delivery_id"]]
        alert["log"] = [e for e in log if e["delivery_id"] is None]
        return alert

    return json_response(await state(request).db.run(fetch))
