"""Alertmanager API v2, the parts Prometheus, Grafana and amtool use.

``POST /api/v2/alerts`` takes Prometheus's batches (labels, annotations, startsAt, endsAt,
generatorURL): a re-send of a firing alert deduplicates into it (annotations and endsAt
updated, no new notification); an alert whose endsAt has passed resolves. As in Alertmanager,
invalid alerts are refused (400, naming each field) while the valid ones of the batch are kept.
"""

import importlib.metadata
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from aiohttp import web

from alert_delivery.alerting import matchers as m
from alert_delivery.alerting import silences
from alert_delivery.alerting.matchers import Matcher
from alert_delivery.api import ingest
from alert_delivery.api.errors import ApiError
from alert_delivery.api.state import TOKEN, iso, json_response, read_json, state
from alert_delivery.db import query
from alert_delivery.errors import InvalidInput

# Alertmanager's own default when an alert comes without endsAt.
RESOLVE_TIMEOUT = timedelta(minutes=5)
MAX_LISTED = 10_000


async def post_alerts(request: web.Request) -> web.Response:
    body = await read_json(request, root="alerts")
    if not isinstance(body, list):
        raise ApiError(400, "must be a JSON array of alerts", field="alerts")
    items: list[ingest.Item] = []
    errors: list[dict[str, str | None]] = []
    for i, raw in enumerate(body):
        try:
            items.append(
                ingest.check_alert(raw, i, names=ingest.ALERTMANAGER_NAMES, allow_unknown=True)
            )
        except InvalidInput as exc:
            errors.append(_error(exc))
    if items:
        results = await state(request).db.run_async(lambda conn: ingest.ingest(conn, items))
        errors.extend({"field": r.field, "message": r.error} for r in results.values() if not r.ok)
    if errors:
        errors.sort(key=lambda e: _index(e["field"]))
        accepted = len(body) - len(errors)
        return json_response(
            {
                "error": f"{len(errors)} of {len(body)} alerts invalid ({accepted} accepted): "
                + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
                "errors": errors,
            },
            status=400,
        )
    return web.Response(status=200)


def _index(where: str | None) -> int:
    found = ingest._AT.match(where or "")
    return int(found.group(1)) if found else -1


def _error(exc: InvalidInput) -> dict[str, str | None]:
    message = str(exc).removeprefix(f"{exc.where}: ") if exc.where else str(exc)
    return {"field": exc.where, "message": message}


def _filters(request: web.Request) -> list[Matcher]:
    texts: list[str] = []
    for value in request.query.getall("filter", []):
        text = value.strip()
        if text.startswith("{") and text.endswith("}"):
            texts.extend(p for p in text[1:-1].split(",") if p.strip())
        else:
            texts.append(text)
    try:
        return m.parse_all(texts, where="filter")
    except InvalidInput as exc:
        raise ApiError(400, _error(exc)["message"] or "", field=exc.where) from None


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "true").strip().lower()
    if value not in ("true", "false"):
        raise ApiError(400, f"must be true or false, not {value[:20]!r}", field=name)
    return value == "true"


def _gettable_alert(row: dict[str, Any]) -> dict[str, Any]:
    silenced = [str(row["silence_id"])] if row["silence_id"] is not None else []
    inhibited = [row["inhibited_by"]] if row["inhibited_by"] else []
    ends = row["ends_at"] or row["updated_at"] + RESOLVE_TIMEOUT
    return {
        "labels": row["labels"],
        "annotations": row["annotations"],
        "startsAt": iso(row["starts_at"]),
        "endsAt": iso(ends),
        "updatedAt": iso(row["updated_at"]),
        "generatorURL": row["generator_url"],
        "fingerprint": row["fingerprint"],
        "receivers": [{"name": n} for n in row["receivers"]],
        "status": {
            "state": "suppressed" if silenced or inhibited else "active",
            "silencedBy": silenced,
            "inhibitedBy": inhibited,
            "mutedBy": [],
        },
    }


async def get_alerts(request: web.Request) -> web.Response:
    filters = _filters(request)
    active, silenced_ok, inhibited_ok = (
        _flag(request, "active"),
        _flag(request, "silenced"),
        _flag(request, "inhibited"),
    )
    _flag(request, "unprocessed")
    receiver = request.query.get("receiver")
    receiver_re = None
    if receiver:
        try:
            receiver_re = m.make("receiver", "=~", receiver, where="receiver")
        except InvalidInput as exc:
            raise ApiError(400, _error(exc)["message"] or "", field="receiver") from None

    def fetch(conn: psycopg.Connection) -> list[dict[str, Any]]:
        cur = conn.execute(query("api", "open_alerts"), {"limit": MAX_LISTED})
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    out = []
    for row in await state(request).db.run(fetch):
        if not m.matches(filters, row["labels"]):
            continue
        alert = _gettable_alert(row)
        st = alert["status"]
        if st["silencedBy"] and not silenced_ok:
            continue
        if st["inhibitedBy"] and not inhibited_ok:
            continue
        if st["state"] == "active" and not active:
            continue
        if receiver_re and not any(
            receiver_re.matches({"receiver": r["name"]}) for r in alert["receivers"]
        ):
            continue
        out.append(alert)
    return json_response(out)


def _silence_state(s: silences.Silence, now: datetime) -> str:
    if s.expired_at is not None or s.ends_at <= now:
        return "expired"
    return "pending" if s.starts_at > now else "active"


def _am_matcher(x: Matcher) -> dict[str, Any]:
    return {
        "name": x.name,
        "value": x.value,
        "isRegex": x.op in ("=~", "!~"),
        "isEqual": x.op in ("=", "=~"),
    }


def _gettable_silence(s: silences.Silence, now: datetime) -> dict[str, Any]:
    ends = s.ends_at if s.expired_at is None else min(s.ends_at, s.expired_at)
    return {
        "id": str(s.silence_id),
        "status": {"state": _silence_state(s, now)},
        "updatedAt": iso(s.expired_at or s.starts_at),
        "matchers": [_am_matcher(x) for x in s.matchers],
        "startsAt": iso(s.starts_at),
        "endsAt": iso(ends),
        "createdBy": s.created_by,
        "comment": s.reason,
    }


def _silence_matches(s: silences.Silence, filters: list[Matcher]) -> bool:
    """Alertmanager's filter: the filter matchers against the silence's equality matchers."""
    labels = {x.name: x.value for x in s.matchers if x.op == "="}
    return m.matches(filters, labels)


async def get_silences(request: web.Request) -> web.Response:
    filters = _filters(request)

    def fetch(conn: psycopg.Connection) -> list[silences.Silence]:
        return silences.list_silences(conn, include_ended=True)

    now = datetime.now(UTC)
    found = await state(request).db.run(fetch)
    return json_response([_gettable_silence(s, now) for s in found if _silence_matches(s, filters)])


def _silence_id(request: web.Request) -> int:
    text = request.match_info["silence_id"]
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, f"no silence {text[:40]!r}", field="silenceID")
    return int(text)


async def get_silence(request: web.Request) -> web.Response:
    silence_id = _silence_id(request)

    def fetch(conn: psycopg.Connection) -> list[silences.Silence]:
        return silences.list_silences(conn, include_ended=True)

    for s in await state(request).db.run(fetch):
        if s.silence_id == silence_id:
            return json_response(_gettable_silence(s, datetime.now(UTC)))
    raise ApiError(404, f"no silence {silence_id}", field="silenceID")


_SILENCE_FIELDS = {
    "match": "matchers",
    "reason": "comment",
    "start": "startsAt",
    "end": "endsAt",
    "minutes": "endsAt",
}


async def post_silences(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "must be a JSON object (a postableSilence)", field="body")
    try:
        selected = m.from_json(body.get("matchers"), where="matchers")
        if not selected:
            raise InvalidInput("needs at least one matcher", where="matchers")
        start = ingest.parse_time(body.get("startsAt"), where="startsAt")
        end = ingest.parse_time(body.get("endsAt"), where="endsAt")
        if end is None:
            raise InvalidInput("is required", where="endsAt")
        for name in ("comment", "createdBy", "id"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise InvalidInput("must be a string", where=name)
    except InvalidInput as exc:
        raise ApiError(400, _error(exc)["message"] or "", field=exc.where) from None
    replaces = body.get("id") or None
    creator = (body.get("createdBy") or "").strip() or request[TOKEN].name
    comment = body.get("comment") or ""
    now = datetime.now(UTC)

    def create(conn: psycopg.Connection) -> int:
        if replaces is not None:
            # Alertmanager's update: the old silence ends, a new one takes its place.
            if not replaces.isdigit() or len(replaces) > 18:
                raise ApiError(404, f"no silence {replaces[:40]!r}", field="id")
            row = conn.execute(
                query("api", "silence_by_id"), {"silence_id": int(replaces)}
            ).fetchone()
            if row is None:
                raise ApiError(404, f"no silence {replaces}", field="id")
            if row[1] is None:
                silences.expire_silence(conn, int(replaces))
        return silences.add_silence(
            conn,
            match=[str(x) for x in selected],
            reason=comment,
            creator=creator,
            start=max(start or now, now),
            end=end,
        )

    try:
        silence_id = await state(request).db.run(create)
    except InvalidInput as exc:
        where = _SILENCE_FIELDS.get(exc.where or "", exc.where)
        raise ApiError(400, _error(exc)["message"] or "", field=where) from None
    return json_response({"silenceID": str(silence_id)})


async def delete_silence(request: web.Request) -> web.Response:
    silence_id = _silence_id(request)

    def expire(conn: psycopg.Connection) -> None:
        row = conn.execute(query("api", "silence_by_id"), {"silence_id": silence_id}).fetchone()
        if row is None:
            raise ApiError(404, f"no silence {silence_id}", field="silenceID")
        if row[1] is None:
            silences.expire_silence(conn, silence_id)

    await state(request).db.run(expire)
    return web.Response(status=200)


def _version() -> str:
    try:
        return importlib.metadata.version("alert-delivery")
    except importlib.metadata.PackageNotFoundError:
        return "0"


async def get_status(request: web.Request) -> web.Response:
    started = state(request).started
    await state(request).db.run(lambda conn: conn.execute(query("api", "ping")).fetchone())
    return json_response(
        {
            "cluster": {"name": "alert-delivery", "status": "disabled", "peers": []},
            "versionInfo": {
                "version": _version(),
                "revision": "alert-delivery",
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": "none (alert-delivery, Python)",
            },
            "config": {"original": "# routing lives in PostgreSQL: alert-delivery rules list\n"},
            "uptime": iso(datetime.fromtimestamp(started, UTC)),
        }
    )


async def get_receivers(request: web.Request) -> web.Response:
    def fetch(conn: psycopg.Connection) -> list[str]:
        rows = conn.execute(query("api", "webhook_names")).fetchall()
        return [str(r[0]) for r in rows]

    return json_response([{"name": n} for n in await state(request).db.run(fetch)])


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def ready(request: web.Request) -> web.Response:
    t0 = time.monotonic()
    await state(request).db.run(lambda conn: conn.execute(query("api", "ping")).fetchone())
    return web.Response(text=f"OK ({(time.monotonic() - t0) * 1000:.1f} ms to the database)")
