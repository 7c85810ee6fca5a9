"""PagerDuty Events API v2.

The body leaves out ``routing_key``: it is a secret, never stored; the delivery engine splices
the webhook's decrypted key into the stored body at send time (the same bytes on every retry).
``dedup_key`` derives from the fingerprint (<= 255 characters), so resolve and acknowledge reach
the incident the trigger opened. One event per alert: PagerDuty deduplicates by key, so these
rows are never grouped.
"""

from collections.abc import Sequence
from typing import Any

from alert_delivery.alerting.fingerprint import pagerduty_dedup_key
from alert_delivery.alerting.runbooks import runbook_page
from alert_delivery.channels.escape import clean_text
from alert_delivery.channels.message import Message, headline

SUMMARY_MAX = 1024


def pagerduty_severity(severity: str, event: str) -> str:
    """critical / error / warning / info; an escalation raises the level one step."""
    escalated = event == "escalate"
    if severity == "CRITICAL":
        return "critical"
    if severity == "WARNING":
        return "error" if escalated else "warning"
    return "warning" if escalated else "info"


def format_pagerduty(event: str, messages: Sequence[Message]) -> dict[str, Any]:
    m = messages[0]
    dedup_key = pagerduty_dedup_key(m["fingerprint"])
    if event in ("resolve", "acknowledge"):
        return {"event_action": event, "dedup_key": dedup_key}
    links = [{"href": m["runbook_url"], "text": "Runbook"}] if m.get("runbook_url") else []
    custom_details: dict[str, Any] = {
        "alert_id": m["id"],
        "description": clean_text(m["description"], 4000),
        "occurrences": m["occurrences"],
        "details": m["details"],
    }
    if m.get("event_detail"):
        custom_details["note"] = clean_text(m["event_detail"], 1000)
    page = None if links else runbook_page(str(m.get("alert_type") or ""))
    if page:
        custom_details["runbook"] = page
    return {
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "alert-delivery",
        "payload": {
            "summary": clean_text(headline(event, [m]), SUMMARY_MAX),
            "source": clean_text(m["source"], 255),
            "severity": pagerduty_severity(m["severity"], event),
            "timestamp": m["created_at"],
            "component": clean_text(m["operation_type"], 255),
            "group": clean_text(m["source"], 255),
            "class": clean_text(m["alert_type"], 255),
            "custom_details": custom_details,
        },
        "links": links,
    }
