"""The OpenAPI 3.1 document served at ``/openapi.json`` (built here, checked by a test against
the routes the application registers)."""

from typing import Any

STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "invalid input; `field` names the path"),
    "401": _json(_ref("Error"), "no, unknown or revoked token"),
    "403": _json(_ref("Error"), "the token's scope does not allow this"),
    "413": _json(_ref("Error"), "body larger than the server's cap"),
    "429": _json(_ref("Error"), "the token's rate limit; see Retry-After"),
    "503": _json(_ref("Error"), "the database is unavailable; nothing was written; Retry-After"),
}


def _op(
    summary: str,
    scope: str | None,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    tag: str,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {**responses}}
    if scope is None:
        op["security"] = []
    else:
        op["description"] = f"Token scope: {scope} (or admin)."
        op["responses"].update(ERRORS)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


FILTER = _q(
    "filter",
    {"type": "array", "items": {"type": "string"}},
    'matchers such as alertname="X" or team=~"db|web"',
)
BOOL = {"type": "boolean", "default": True}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "field": {"type": ["string", "null"], "examples": ["alerts[3].labels.severity"]},
            "errors": {"type": "array", "items": {}},
        },
        "required": ["error"],
    },
    "PostableAlert": {
        "type": "object",
        "properties": {
            "labels": STR_MAP,
            "annotations": STR_MAP,
            "startsAt": TIME,
            "endsAt": {**TIME, "description": "in the past: the alert resolves"},
            "generatorURL": {"type": "string"},
        },
        "required": ["labels"],
    },
    "GettableAlert": {
        "type": "object",
        "properties": {
            "labels": STR_MAP,
            "annotations": STR_MAP,
            "startsAt": TIME,
            "endsAt": TIME,
            "updatedAt": TIME,
            "generatorURL": {"type": "string"},
            "fingerprint": {"type": "string"},
            "receivers": {"type": "array", "items": {"type": "object"}},
            "status": {
                "type": "object",
                "properties": {
                    "state": {"enum": ["active", "suppressed", "unprocessed"]},
                    "silencedBy": {"type": "array", "items": {"type": "string"}},
                    "inhibitedBy": {"type": "array", "items": {"type": "string"}},
                    "mutedBy": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "Matcher": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string"},
            "isRegex": {"type": "boolean"},
            "isEqual": {"type": "boolean", "default": True},
        },
        "required": ["name", "value", "isRegex"],
    },
    "PostableSilence": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "given: that silence ends, this replaces it"},
            "matchers": {"type": "array", "items": _ref("Matcher"), "minItems": 1},
            "startsAt": TIME,
            "endsAt": TIME,
            "createdBy": {"type": "string"},
            "comment": {"type": "string"},
        },
        "required": ["matchers", "endsAt", "comment"],
    },
    "GettableSilence": {
        "allOf": [
            _ref("PostableSilence"),
            {
                "type": "object",
                "properties": {
                    "status": {
                        "type": "object",
                        "properties": {"state": {"enum": ["active", "pending", "expired"]}},
                    },
                    "updatedAt": TIME,
                },
            },
        ]
    },
    "NativeAlert": {
        "type": "object",
        "properties": {
            "labels": STR_MAP,
            "annotations": STR_MAP,
            "starts_at": TIME,
            "ends_at": TIME,
            "generator_url": {"type": "string"},
            "details": {"type": "object"},
        },
        "required": ["labels"],
        "additionalProperties": False,
    },
    "NativeBatch": {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "alerts": {"type": "array", "items": _ref("NativeAlert"), "minItems": 1},
                    "atomic": {"type": "boolean", "default": False},
                },
                "required": ["alerts"],
            },
            {"type": "array", "items": _ref("NativeAlert"), "minItems": 1},
        ]
    },
    "NativeResults": {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer"},
            "rejected": {"type": "integer"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "alert_id": {"type": ["integer", "null"]},
                        "outcome": {
                            "enum": [
                                "notified",
                                "repeated",
                                "deduplicated",
                                "suppressed_duplicate_content",
                                "silenced",
                                "inhibited",
                                "unrouted",
                                "resolved",
                            ]
                        },
                        "field": {"type": "string"},
                        "error": {"type": "string"},
                    },
                },
            },
        },
    },
    "PagerDutyEvent": {
        "type": "object",
        "properties": {
            "routing_key": {"type": "string", "description": "an alert-delivery ingest token"},
            "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
            "dedup_key": {"type": "string", "maxLength": 255},
            "payload": {
                "type": "object",
                "properties": {
                    "summary": {"type": "string"},
                    "source": {"type": "string"},
                    "severity": {"enum": ["critical", "error", "warning", "info"]},
                    "timestamp": TIME,
                    "component": {"type": "string"},
                    "group": {"type": "string"},
                    "class": {"type": "string"},
                    "custom_details": {},
                },
                "required": ["summary", "source", "severity"],
            },
        },
        "required": ["routing_key", "event_action"],
    },
}

OK = {"200": {"description": "done; committed"}}
AM = "Alertmanager API v2"
PD = "PagerDuty Events API v2"
NATIVE = "native"
PROBE = "probes"


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/v2/alerts": {
            "post": _op(
                "raise, re-send (dedup) or resolve (endsAt passed) alerts; the valid ones of a"
                " batch are kept even when others are refused (400)",
                "ingest",
                {"200": {"description": "every alert committed"}},
                body={"type": "array", "items": _ref("PostableAlert")},
                tag=AM,
            ),
            "get": _op(
                "open alerts",
                "read",
                {"200": _json({"type": "array", "items": _ref("GettableAlert")}, "alerts")},
                params=[
                    FILTER,
                    _q("active", BOOL, ""),
                    _q("silenced", BOOL, ""),
                    _q("inhibited", BOOL, ""),
                    _q("unprocessed", BOOL, "accepted, nothing is unprocessed"),
                    _q("receiver", {"type": "string"}, "regex on webhook names"),
                ],
                tag=AM,
            ),
        },
        "/api/v2/silences": {
            "get": _op(
                "silences (active, pending and expired)",
                "read",
                {"200": _json({"type": "array", "items": _ref("GettableSilence")}, "silences")},
                params=[FILTER],
                tag=AM,
            ),
            "post": _op(
                "create (or replace) a silence",
                "admin",
                {"200": _json({"type": "object", "properties": {"silenceID": {}}}, "its id")},
                body=_ref("PostableSilence"),
                tag=AM,
            ),
        },
        "/api/v2/silence/{silence_id}": {
            "get": _op(
                "one silence",
                "read",
                {"200": _json(_ref("GettableSilence"), "the silence")},
                params=[_p("silence_id")],
                tag=AM,
            ),
            "delete": _op(
                "expire a silence (held alerts that still fire notify)",
                "admin",
                {**OK, "404": _json(_ref("Error"), "no such silence")},
                params=[_p("silence_id")],
                tag=AM,
            ),
        },
        "/api/v2/status": {
            "get": _op("server status", "read", {"200": {"description": "status"}}, tag=AM)
        },
        "/api/v2/receivers": {
            "get": _op("webhook names", "read", {"200": {"description": "receivers"}}, tag=AM)
        },
        "/v2/enqueue": {
            "post": _op(
                "PagerDuty event: trigger, acknowledge or resolve by dedup_key",
                "ingest (the routing_key)",
                {
                    "202": _json(
                        {
                            "type": "object",
                            "properties": {
                                "status": {"const": "success"},
                                "message": {"const": "Event processed"},
                                "dedup_key": {"type": "string"},
                            },
                        },
                        "committed",
                    )
                },
                body=_ref("PagerDutyEvent"),
                tag=PD,
            )
        },
        "/api/v1/alerts": {
            "post": _op(
                "raise a batch; per-alert outcomes",
                "ingest",
                {"200": _json(_ref("NativeResults"), "committed; rejected alerts say why")},
                body=_ref("NativeBatch"),
                tag=NATIVE,
            )
        },
        "/api/v1/alerts/{alert_id}": {
            "get": _op(
                "an alert with its deliveries and their log",
                "read",
                {"200": {"description": "the alert"}, "404": _json(_ref("Error"), "no alert")},
                params=[_p("alert_id")],
                tag=NATIVE,
            )
        },
        "/api/v1/alerts/{alert_id}/ack": {
            "post": _op(
                'acknowledge (body optional: {"by": name})',
                "ingest",
                {**OK, "404": _json(_ref("Error"), "no alert"), "409": _json(_ref("Error"), "")},
                params=[_p("alert_id")],
                tag=NATIVE,
            )
        },
        "/api/v1/alerts/{alert_id}/resolve": {
            "post": _op(
                'resolve (body optional: {"by": name})',
                "ingest",
                {**OK, "404": _json(_ref("Error"), "no alert"), "409": _json(_ref("Error"), "")},
                params=[_p("alert_id")],
                tag=NATIVE,
            )
        },
        "/-/healthy": {
            "get": _op("the process is up", None, {"200": {"description": "OK"}}, tag=PROBE)
        },
        "/-/ready": {
            "get": _op(
                "the database answers",
                None,
                {"200": {"description": "OK"}, "503": {"description": "database unavailable"}},
                tag=PROBE,
            )
        },
        "/openapi.json": {
            "get": _op("this document", None, {"200": {"description": "OpenAPI 3.1"}}, tag=PROBE)
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "alert-delivery",
            "version": "1",
            "description": "Durable alert ingestion: a 2xx means the alert, its routing and its"
            " deliveries are committed. Alertmanager API v2 and PagerDuty Events API v2"
            " compatible.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"basic": []}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description": "token as password"},
            },
        },
        "paths": paths,
    }
