"""Escalation: unacknowledged alerts and stuck deliveries, re-sent to the escalation route.

The work is PL/pgSQL (``alert_delivery.run_escalations`` in sql/migrations/0006_escalation.sql);
this package is its Python face, called by the Dagster ``escalate`` job. No Dagster here.
"""

from alert_delivery.escalation.report import EscalationRow, EscalationSummary, list_escalations
from alert_delivery.escalation.routes import (
    REASONS,
    EscalationRoute,
    add_route,
    list_routes,
    remove_route,
)
from alert_delivery.escalation.runner import EscalationAction, EscalationPolicy, run_escalations

__all__ = [
    "REASONS",
    "EscalationAction",
    "EscalationPolicy",
    "EscalationRoute",
    "EscalationRow",
    "EscalationSummary",
    "add_route",
    "list_escalations",
    "list_routes",
    "remove_route",
    "run_escalations",
]
