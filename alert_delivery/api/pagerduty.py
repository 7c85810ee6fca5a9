"""PagerDuty Events API v2: ``POST /v2/enqueue``.

The ``routing_key`` is one of our tokens (scope ingest). ``trigger`` raises the alert whose
labels are ``source=pagerduty``, ``dedup_key`` and ``severity`` (PagerDuty's critical / error /
warning / info become CRITICAL / CRITICAL / WARNING / INFO); ``payload.summary`` is the title,
``source``, ``component``, ``group`` and ``class`` are annotations, ``custom_details`` the
details. ``acknowledge`` and ``resolve`` act on the open alerts of that ``dedup_key``. Answers
202 ``{"status": "success", "message": "Event processed", "dedup_key": ...}`` as PagerDuty does,
and 400 ``{"status": "invalid event", "message": ..., "errors": [...]}``.
"""

import uuid
from typing import Any

import psycopg
from aiohttp import web

from alert_delivery.alerting import lifecycle
from alert_delivery.api import ingest
from alert_delivery.api.errors import ApiError
from alert_delivery.api.state import authorize, json_response, presented_token, read_json, state
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

SEVERITY = {"critical": "CRITICAL", "error": "CRITICAL", "warning": "WARNING", "info": "INFO"}
ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_DEDUP_KEY = 255


def _invalid(message: str, field: str) -> web.Response:
    return json_response(
        {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": [f"{field}: {message}"],
            "field": field,
        },
        status=400,
    )


def _text(payload: dict[str, Any], name: str, *, required: bool, limit: int) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise InvalidInput("is required", where=f"payload.{name}")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput("must be a non-empty string", where=f"payload.{name}")
    if len(value) > limit:
        raise InvalidInput(f"is longer than {limit} characters", where=f"payload.{name}")
    return value


def _trigger(body: dict[str, Any], dedup_key: str) -> ingest.Item:
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidInput("is required for trigger and must be an object", where="payload")
    summary = _text(payload, "summary", required=True, limit=1024)
    source = _text(payload, "source", required=True, limit=1024)
    severity = payload.get("severity")
    if not isinstance(severity, str) or severity not in SEVERITY:
        raise InvalidInput(
            f"must be one of critical, error, warning, info, not {str(severity)[:40]!r}",
            where="payload.severity",
        )
    annotations = {"summary": summary or "", "pagerduty_source": source or ""}
    for name in ("component", "group", "class"):
        value = _text(payload, name, required=False, limit=1024)
        if value:
            annotations[name] = value
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        details = {"custom_details": details}
    raw = {
        "labels": {"source": "pagerduty", "dedup_key": dedup_key, "severity": SEVERITY[severity]},
        "annotations": annotations,
    }
    if isinstance(payload.get("timestamp"), str):
        raw["starts_at"] = payload["timestamp"]
    try:
        return ingest.check_alert(raw, 0, extra={"details": details or None})
    except InvalidInput as exc:
        where = (exc.where or "").replace("alerts[0].starts_at", "payload.timestamp")
        where = where.replace("alerts[0].labels.dedup_key", "dedup_key")
        raise InvalidInput(str(exc).split(": ", 1)[-1], where=where) from None


async def enqueue(request: web.Request) -> web.Response:
    try:
        body = await read_json(request)
    except ApiError as exc:
        if exc.status != 400:
            raise
        return _invalid(exc.message, exc.field or "body")
    if not isinstance(body, dict):
        return _invalid("must be a JSON object", "body")
    key = body.get("routing_key")
    if key is not None and not isinstance(key, str):
        return _invalid("must be a string", "routing_key")
    token = await authorize(request, "ingest", presented_token(request) or key)
    action = body.get("event_action")
    if action not in ACTIONS:
        return _invalid(f"must be one of {', '.join(ACTIONS)}", "event_action")
    dedup_key = body.get("dedup_key")
    if dedup_key is not None and (
        not isinstance(dedup_key, str) or not dedup_key.strip() or len(dedup_key) > MAX_DEDUP_KEY
    ):
        return _invalid(f"must be a non-empty string of at most {MAX_DEDUP_KEY} chars", "dedup_key")
    if dedup_key is None:
        if action != "trigger":
            return _invalid(f"is required for {action}", "dedup_key")
        dedup_key = uuid.uuid4().hex
    by = f"pagerduty-api:{token.name}"
    try:
        if action == "trigger":
            item = _trigger(body, dedup_key)
            await state(request).db.run_async(lambda conn: ingest.ingest(conn, [item], atomic=True))
        else:

            def act(conn: psycopg.Connection) -> None:
                rows = conn.execute(
                    query("api", "open_alerts_by_dedup_key"), {"dedup_key": dedup_key}
                ).fetchall()
                for (alert_id,) in rows:
                    status = conn.execute(
                        query("api", "lock_alert"), {"alert_id": alert_id}
                    ).fetchone()
                    if action == "resolve":
                        lifecycle.resolve(conn, alert_id, by=by)
                    elif status and status[0] == "firing":
                        lifecycle.acknowledge(conn, alert_id, by=by)

            await state(request).db.run(act)
    except InvalidInput as exc:
        return _invalid(str(exc).split(": ", 1)[-1], exc.where or "body")
    return json_response(
        {"status": "success", "message": "Event processed", "dedup_key": dedup_key}, status=202
    )
