"""Escalation routes are validated, listed and removed by name; bad policies are named."""

import psycopg
import pytest
from psycopg import errors

from alert_delivery.errors import InvalidInput
from alert_delivery.escalation import add_route, list_routes, remove_route, run_escalations
from tests.support.alerting import add_webhook

BAD_ROUTES: list[tuple[dict[str, object], str]] = [
    ({"name": " "}, "name: must not be empty"),
    ({"severity": "LOUD"}, "severity: must be one of ALL, INFO, WARNING, CRITICAL"),
    ({"webhooks": [], "kinds": []}, "webhooks: a route needs at least one webhook or kind"),
    ({"webhooks": ["nope"]}, "webhooks: unknown webhook 'nope'"),
    ({"kinds": ["fax"]}, "kinds: unknown 'fax'"),
    ({"reasons": ["bored"]}, "reasons: unknown 'bored'"),
    ({"reasons": []}, "reasons: needs at least one of"),
    ({"operation_type": ""}, "operation_type: must not be empty"),
]


def test_bad_routes_are_rejected_by_field(conn: psycopg.Connection) -> None:
    add_webhook(conn, "pager", "pagerduty")
    for kwargs, message in BAD_ROUTES:
        args: dict[str, object] = {"name": "r", "webhooks": ["pager"]} | kwargs
        name = str(args.pop("name"))
        with pytest.raises(InvalidInput, match=message):
            add_route(conn, name, **args)  # type: ignore[arg-type]
    assert list_routes(conn) == []


def test_routes_are_listed_and_removed_by_name(conn: psycopg.Connection) -> None:
    add_webhook(conn, "pager", "pagerduty")
    route_id = add_route(
        conn, "pages", webhooks=["pager", "pager"], kinds=["email"], severity="critical"
    )
    [route] = list_routes(conn)
    assert (route.route_id, route.name) == (route_id, "pages")
    assert [str(x) for x in route.matchers] == ["severity=CRITICAL"]
    assert (route.webhooks, route.target_kinds) == (["pager"], ["email"])
    assert route.reasons == ["unacknowledged", "stale_delivery", "near_dead_letter"]
    with pytest.raises(InvalidInput, match="name: a route named 'pages' already exists"):
        add_route(conn, "pages", kinds=["slack"])
    remove_route(conn, "pages")
    assert list_routes(conn) == []
    with pytest.raises(InvalidInput, match="name: no escalation route named 'pages'"):
        remove_route(conn, "pages")


def test_sql_callers_get_the_bad_parameter_named(conn: psycopg.Connection) -> None:
    with pytest.raises(errors.InvalidParameterValue) as info:
        conn.execute("SELECT * FROM alert_delivery.run_escalations(600, 6)")
    assert info.value.diag.column_name == "max_level"
    with pytest.raises(errors.CheckViolation):
        conn.execute("INSERT INTO alert_delivery.escalations (alert_id, reason) VALUES (NULL, 'x')")
    assert run_escalations(conn) == []
