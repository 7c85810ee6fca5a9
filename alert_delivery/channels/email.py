"""Email over SMTP: ``{"subject", "text", "html"}``; the delivery engine builds the MIME parts.

The subject carries the severity and operation and is one line (no header injection); the HTML
part escapes every alert field.
"""

from collections.abc import Sequence
from typing import Any

from alert_delivery.alerting.runbooks import runbook_page
from alert_delivery.channels.escape import clean_text, html_text, subject_text
from alert_delivery.channels.message import Message, details_text, event_label, runbook_text
from alert_delivery.channels.slack import COLOURS, RESOLVED_COLOUR


def block_text(event: str, m: Message) -> str:
    details = clean_text(details_text(m.get("details")), 1000)
    lines = [
        clean_text(f"{event_label(event)} [{m['severity']}] {m['title']}", 500),
        "Operation: " + clean_text(m["operation_type"], 200),
        "Alert type: " + clean_text(m["alert_type"], 200),
        "Source: " + clean_text(m["source"], 200),
        f"Started: {m['created_at']}",
        f"Details: {details}" if details else None,
        "Note: " + clean_text(m["event_detail"], 1000) if m.get("event_detail") else None,
        runbook_text(m),
        "",
        clean_text(m["description"], 8000),
    ]
    return "\n".join(line for line in lines if line is not None)


def block_html(event: str, m: Message) -> str:
    colour = RESOLVED_COLOUR if event == "resolve" else COLOURS.get(m["severity"], "#36C5F0")
    rows = "".join(
        f"<tr><th>{label}</th><td>{html_text(value, limit)}</td></tr>"
        for label, value, limit in (
            ("Operation", m["operation_type"], 200),
            ("Alert type", m["alert_type"], 200),
            ("Source", m["source"], 200),
            ("Started", m["created_at"], 40),
            ("Details", details_text(m.get("details")), 1000),
        )
    )
    if m.get("event_detail"):
        rows += f"<tr><th>Note</th><td>{html_text(m['event_detail'], 1000)}</td></tr>"
    page = None if m.get("runbook_url") else runbook_page(str(m.get("alert_type") or ""))
    if m.get("runbook_url"):
        runbook = f'<p><a href="{html_text(m["runbook_url"], 2000)}">Runbook</a></p>'
    else:
        runbook = f"<p>Runbook: {html_text(page, 200)}</p>" if page else ""
    title = html_text(f"{event_label(event)} [{m['severity']}] {m['title']}", 500)
    return (
        f'<h2 style="color:{colour}">{title}</h2><table>{rows}</table>{runbook}'
        f"<pre>{html_text(m['description'], 8000)}</pre>"
    )


def email_subject(event: str, messages: Sequence[Message]) -> str:
    first = messages[0]
    if len(messages) == 1:
        text = (
            f"[{event_label(event)}] [{first['severity']}] {first['operation_type']}: "
            f"{first['title']}"
        )
    else:
        operations = ", ".join(sorted({m["operation_type"] for m in messages}))
        text = f"[{event_label(event)}] [{first['severity']}] {len(messages)} alerts: {operations}"
    return subject_text(text, 200)


def format_email(event: str, messages: Sequence[Message]) -> dict[str, Any]:
    return {
        "subject": email_subject(event, messages),
        "text": "\n\n---\n\n".join(block_text(event, m) for m in messages),
        "html": "<html><body>"
        + "<hr>".join(block_html(event, m) for m in messages)
        + "</body></html>",
    }
