"""The aiohttp application: routes, the auth / error middleware, the endsAt sweep.

Why aiohttp's server rather than Starlette on uvicorn: it is already a dependency (the sender
uses its client), and a request's cost here is the raise and its commit in PostgreSQL (about a
millisecond for one alert, 30-40 ms for a batch of 100, bench/bench_api.py), not the HTTP layer;
the two servers were not benchmarked against each other.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import psycopg
from aiohttp import web

from alert_delivery.api import alertmanager, native, pagerduty
from alert_delivery.api.database import Database
from alert_delivery.api.errors import ApiError
from alert_delivery.api.ingest import expire_ended
from alert_delivery.api.openapi import document
from alert_delivery.api.state import STATE, State, authorize, json_response, presented_token
from alert_delivery.api.tokens import Token, TokenCache, load_live
from alert_delivery.errors import DatabaseUnavailable, InvalidInput

log = logging.getLogger("alert_delivery.api")
RETRY_AFTER_S = "2"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServeOptions:
    max_body: int = 1 << 20
    threads: int = 8
    token_ttl_s: float = 2.0
    sweep_interval_s: float = 1.0


async def openapi(_request: web.Request) -> web.Response:
    return json_response(document())


# name -> (method, path, handler, scope); scope None: no token; "body": the handler checks it.
ROUTES: dict[str, tuple[str, str, Handler, str | None]] = {
    "am_post_alerts": ("POST", "/api/v2/alerts", alertmanager.post_alerts, "ingest"),
    "am_get_alerts": ("GET", "/api/v2/alerts", alertmanager.get_alerts, "read"),
    "am_get_silences": ("GET", "/api/v2/silences", alertmanager.get_silences, "read"),
    "am_post_silences": ("POST", "/api/v2/silences", alertmanager.post_silences, "admin"),
    "am_get_silence": ("GET", "/api/v2/silence/{silence_id}", alertmanager.get_silence, "read"),
    "am_delete_silence": (
        "DELETE",
        "/api/v2/silence/{silence_id}",
        alertmanager.delete_silence,
        "admin",
    ),
    "am_status": ("GET", "/api/v2/status", alertmanager.get_status, "read"),
    "am_receivers": ("GET", "/api/v2/receivers", alertmanager.get_receivers, "read"),
    "pd_enqueue": ("POST", "/v2/enqueue", pagerduty.enqueue, "body"),
    "native_post_alerts": ("POST", "/api/v1/alerts", native.post_alerts, "ingest"),
    "native_get_alert": ("GET", "/api/v1/alerts/{alert_id}", native.get_alert, "read"),
    "native_ack": ("POST", "/api/v1/alerts/{alert_id}/ack", native.ack, "ingest"),
    "native_resolve": ("POST", "/api/v1/alerts/{alert_id}/resolve", native.resolve, "ingest"),
    "healthy": ("GET", "/-/healthy", alertmanager.healthy, None),
    "ready": ("GET", "/-/ready", alertmanager.ready, None),
    "openapi": ("GET", "/openapi.json", openapi, None),
}


def _error_response(exc: ApiError) -> web.Response:
    body: dict[str, object] = {"error": str(exc), "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    return web.Response(
        body=json.dumps(body).encode(),
        status=exc.status,
        content_type="application/json",
        headers=exc.headers,
    )


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        route = request.match_info.route.name
        scope = ROUTES[route][3] if route in ROUTES else None
        if scope not in (None, "body"):
            await authorize(request, scope, presented_token(request))
        return await handler(request)
    except ApiError as exc:
        return _error_response(exc)
    except InvalidInput as exc:
        message = str(exc).removeprefix(f"{exc.where}: ") if exc.where else str(exc)
        return _error_response(ApiError(400, message, field=exc.where))
    except DatabaseUnavailable:
        return _error_response(
            ApiError(
                503,
                "the database is unavailable; nothing was written, try again",
                headers={"Retry-After": RETRY_AFTER_S},
            )
        )
    except psycopg.errors.DataError as exc:
        # A value PostgreSQL refused that the checks above let through: still the client's.
        primary = (exc.diag.message_primary or type(exc).__name__).splitlines()[0][:200]
        return _error_response(ApiError(400, primary, field="body"))
    except web.HTTPException as exc:
        if exc.status == 413:
            return _error_response(ApiError(413, "body larger than the server accepts"))
        if exc.status >= 400:
            return _error_response(ApiError(exc.status, exc.reason, headers=dict(exc.headers)))
        raise
    except Exception:
        # Never the request body or headers: they may carry a token.
        log.exception("%s %s failed", request.method, request.path)
        return _error_response(ApiError(500, "internal error (see the server's log)"))


async def _sweep(state: State, interval_s: float) -> None:
    """Resolve open alerts whose endsAt passed (no re-send came): Alertmanager's timeout."""
    down = False
    while True:
        try:
            await state.db.run(expire_ended)
            if down:
                log.warning("endsAt sweep: database back")
            down = False
        except DatabaseUnavailable as exc:
            if not down:
                log.warning("endsAt sweep: %s", exc)
            down = True
        except Exception:
            log.exception("endsAt sweep failed")
        await asyncio.sleep(interval_s)


def build_app(db: Database, options: ServeOptions | None = None) -> web.Application:
    options = options or ServeOptions()

    async def load() -> list[tuple[str, Token]]:
        return await db.run(load_live)

    state = State(
        db=db, tokens=TokenCache(load, ttl_s=options.token_ttl_s), max_body=options.max_body
    )
    app = web.Application(middlewares=[middleware], client_max_size=options.max_body)
    app[STATE] = state
    for name, (method, path, handler, _scope) in ROUTES.items():
        app.router.add_route(method, path, handler, name=name)

    async def background(app: web.Application) -> AsyncIterator[None]:
        task = None
        if options.sweep_interval_s > 0:
            task = asyncio.create_task(_sweep(state, options.sweep_interval_s))
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await db.aclose()
        await asyncio.get_running_loop().run_in_executor(None, db.close)

    app.cleanup_ctx.append(background)
    return app
