"""Each channel's body against its documented format, hostile alerts included."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from alert_delivery.channels import KINDS, render
from alert_delivery.channels.pagerduty import pagerduty_severity
from tests.support.alerting import HOSTILE_DESCRIPTION, HOSTILE_TITLE

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def message(**overrides: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "id": 7,
        "fingerprint": "f" * 64,
        "source": "detection",
        "operation_type": "merge",
        "alert_type": "STATISTICAL",
        "severity": "CRITICAL",
        "status": "firing",
        "title": "merge: statistical latency anomaly",
        "description": "p99 is 5x the baseline",
        "details": {"z_score": 4.2, "metric_id": 99, "duration_ms": 1250.5, "baseline_ms": 200},
        "runbook_url": "https://runbooks.alert-delivery.dev/anomalies/statistical",
        "occurrences": 1,
        "created_at": "2026-03-01T11:59:00Z",
        "acknowledged_by": None,
    }
    m.update(overrides)
    return m


HOSTILE = message(title=HOSTILE_TITLE, description=HOSTILE_DESCRIPTION, operation_type="<@U1>")


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    return []


@pytest.mark.parametrize(
    ("severity", "colour"), [("CRITICAL", "#E01E5A"), ("WARNING", "#ECB22E"), ("INFO", "#36C5F0")]
)
def test_slack_attachments_with_block_kit_and_severity_colours(severity: str, colour: str) -> None:
    body = render("slack", "trigger", [message(severity=severity)], AT)
    assert body["text"] == f"FIRING [{severity}] merge: merge: statistical latency anomaly"
    (attachment,) = body["attachments"]
    assert attachment["color"] == colour
    header, section, fields, context = attachment["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert section["text"] == {
        "type": "plain_text",
        "text": "p99 is 5x the baseline",
        "emoji": False,
    }
    assert {f["text"] for f in fields["fields"]} >= {"Operation: merge", "Severity: " + severity}
    assert "z_score=4.2" in context["elements"][0]["text"]
    assert "Runbook: https://runbooks" in context["elements"][0]["text"]


def test_slack_hostile_text_is_escaped_and_within_block_limits() -> None:
    body = render("slack", "trigger", [HOSTILE], AT)
    header, section, _fields, _ = body["attachments"][0]["blocks"]
    assert len(header["text"]["text"]) <= 150
    assert len(section["text"]["text"]) <= 3000
    for text in _all_strings(body):
        assert "<!channel>" not in text and "<https://evil" not in text and "<@U1>" not in text
        assert "\x07" not in text and "\x1b" not in text and "\u202e" not in text


def test_mattermost_attachments_with_hex_colours_and_escaped_markdown() -> None:
    body = render("mattermost", "trigger", [HOSTILE, message(severity="WARNING")], AT)
    colours = [a["color"] for a in body["attachments"]]
    assert colours == ["#FF0000", "#FFA500"]
    assert all(c.startswith("#") and len(c) == 7 for c in colours)
    assert body["text"] == "FIRING: 2 alerts \\(STATISTICAL\\)"
    first = body["attachments"][0]
    assert len(first["text"]) <= 6000
    assert first["title_link"].startswith("https://")
    for text in _all_strings(body):
        assert "@here" not in text and "@all" not in text and "@channel" not in text
    assert "\\*bold\\*" in first["fallback"] or "*bold*" in first["fallback"]


def test_pagerduty_events_v2_trigger_without_routing_key() -> None:
    body = render("pagerduty", "trigger", [message(title="x" * 5000)], AT)
    assert "routing_key" not in body
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "alert-delivery/" + "f" * 64 and len(body["dedup_key"]) <= 255
    payload = body["payload"]
    assert len(payload["summary"]) == 1024
    assert payload["source"] == "detection" and payload["severity"] == "critical"
    assert payload["component"] == "merge" and payload["class"] == "STATISTICAL"
    assert payload["timestamp"] == "2026-03-01T11:59:00Z"
    assert body["links"] == [{"href": message()["runbook_url"], "text": "Runbook"}]


@pytest.mark.parametrize("event", ["resolve", "acknowledge"])
def test_pagerduty_resolve_and_acknowledge_carry_only_the_dedup_key(event: str) -> None:
    body = render("pagerduty", event, [message()], AT)
    assert body == {"event_action": event, "dedup_key": "alert-delivery/" + "f" * 64}


@pytest.mark.parametrize(
    ("severity", "event", "expected"),
    [
        ("CRITICAL", "trigger", "critical"),
        ("WARNING", "trigger", "warning"),
        ("INFO", "trigger", "info"),
        ("WARNING", "escalate", "error"),
        ("INFO", "escalate", "warning"),
    ],
)
def test_pagerduty_severity_mapping(severity: str, event: str, expected: str) -> None:
    assert pagerduty_severity(severity, event) == expected
    assert expected in {"critical", "error", "warning", "info"}


def test_email_has_text_and_html_and_a_subject_with_severity_and_operation() -> None:
    body = render("email", "trigger", [HOSTILE], AT)
    assert set(body) == {"subject", "text", "html"}
    assert body["subject"].startswith("[FIRING] [CRITICAL] <@U1>: Merge")
    assert "\n" not in body["subject"] and len(body["subject"]) <= 200
    assert "<script>" not in body["html"] and "&lt;script&gt;" in body["html"]
    assert body["html"].startswith("<html><body>")
    assert "<script>alert(1)</script>" in body["text"]  # plain text is not markup
    assert len(body["text"]) < 10_000  # the 100 KB description was cut


def test_email_subject_for_a_batch_lists_operations() -> None:
    batch = [message(operation_type="merge"), message(id=8, operation_type="commit")]
    body = render("email", "trigger", batch, AT)
    assert body["subject"] == "[FIRING] [CRITICAL] 2 alerts: commit, merge"
    assert body["text"].count("Operation: ") == 2


def test_inbox_body_is_title_body_severity() -> None:
    body = render("inbox", "resolve", [HOSTILE], AT)
    assert set(body) == {"title", "body", "severity"}
    assert body["severity"] == "CRITICAL" and body["title"].startswith("RESOLVED [CRITICAL]")
    assert len(body["title"]) <= 200 and len(body["body"]) <= 4000


def test_generic_webhook_envelope_is_versioned_and_stable() -> None:
    first = render("webhook", "trigger", [message()], AT)
    assert set(first) == {"version", "type", "id", "timestamp", "data"}
    assert first["version"] == "1" and first["type"] == "alert.triggered"
    assert first["timestamp"] == "2026-03-01T12:00:00.000000Z"
    assert first["id"].startswith("evt_")
    assert first == render("webhook", "trigger", [message()], AT)
    assert render("webhook", "resolve", [message()], AT)["type"] == "alert.resolved"
    assert render("webhook", "resolve", [message()], AT)["id"] != first["id"]
    assert first["data"]["alerts"][0]["details"]["z_score"] == 4.2
    hostile = render("webhook", "trigger", [HOSTILE], AT)["data"]["alerts"][0]
    assert len(hostile["description"]) == 10_000 and "\x07" not in hostile["title"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_body_is_json_serialisable_and_bounded(kind: str) -> None:
    body = render(kind, "trigger", [HOSTILE] * 10, AT)
    assert len(json.dumps(body)) < 300_000
    with pytest.raises(ValueError):
        render(kind, "trigger", [], AT)


def test_without_a_runbook_link_the_page_is_named_as_plain_text() -> None:
    m = message(runbook_url=None)
    slack = render("slack", "trigger", [m], AT)
    assert "Runbook: docs/runbooks/statistical.md" in json.dumps(slack)
    mattermost = render("mattermost", "trigger", [m], AT)["attachments"][0]
    assert "title_link" not in mattermost
    assert mattermost["fields"][-1]["title"] == "Runbook"
    assert "docs/runbooks/statistical.md" in mattermost["fields"][-1]["value"]
    mail = render("email", "trigger", [m], AT)
    assert "Runbook: docs/runbooks/statistical.md" in mail["text"]
    assert (
        "<p>Runbook: docs/runbooks/statistical.md</p>" in mail["html"]
        and "href" not in mail["html"]
    )
    pd = render("pagerduty", "trigger", [m], AT)
    assert pd["links"] == [] and pd["payload"]["custom_details"]["runbook"] == (
        "docs/runbooks/statistical.md"
    )
    assert render("webhook", "trigger", [m], AT)["data"]["alerts"][0]["runbook_url"] is None
    unknown = render("slack", "trigger", [message(runbook_url=None, alert_type="NEW")], AT)
    assert "Runbook" not in json.dumps(unknown)


@pytest.mark.parametrize("given", [None, "http://plain.example/x", "javascript:alert(1)"])
def test_the_runbook_base_links_the_page_when_the_alert_has_no_https_link(
    given: str | None,
) -> None:
    base = "https://docs.example.com/runbooks"
    link = f"{base}/statistical.md"
    m = message(runbook_url=given)
    pd = render("pagerduty", "trigger", [m], AT, runbook_base=base)
    assert pd["links"] == [{"href": link, "text": "Runbook"}]
    assert "runbook" not in pd["payload"]["custom_details"]
    mattermost = render("mattermost", "trigger", [m], AT, runbook_base=base)
    assert mattermost["attachments"][0]["title_link"] == link
    assert f'href="{link}"' in render("email", "trigger", [m], AT, runbook_base=base)["html"]
    hook = render("webhook", "trigger", [m], AT, runbook_base=base)
    assert hook["data"]["alerts"][0]["runbook_url"] == link
    own = render("pagerduty", "trigger", [message()], AT, runbook_base=base)
    assert own["links"] == [{"href": message()["runbook_url"], "text": "Runbook"}]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("event", ["trigger", "acknowledge", "resolve", "escalate", "test"])
def test_every_kind_renders_every_event(kind: str, event: str) -> None:
    body = render(kind, event, [message(), message(id=8)], AT)
    text = json.dumps(body, ensure_ascii=False)
    if kind == "pagerduty" and event in ("acknowledge", "resolve"):
        assert body["event_action"] == event
        return
    label = {
        "trigger": "FIRING",
        "acknowledge": "ACKNOWLEDGED",
        "resolve": "RESOLVED",
        "escalate": "ESCALATED",
        "test": "TEST",
    }[event]
    if kind == "webhook":
        assert (
            body["type"]
            == "alert."
            + {
                "trigger": "triggered",
                "acknowledge": "acknowledged",
                "resolve": "resolved",
                "escalate": "escalated",
                "test": "test",
            }[event]
        )
    else:
        assert label in text


def test_the_event_detail_is_shown_escaped_where_a_channel_has_text() -> None:
    m = message(event_detail="level 2 of 5: <!channel> @here <script>x</script>\x07")
    slack = json.dumps(render("slack", "escalate", [m], AT))
    assert "level 2 of 5: &lt;!channel&gt;" in slack and "\\u0007" not in slack
    fields = render("mattermost", "escalate", [m], AT)["attachments"][0]["fields"]
    note = next(f["value"] for f in fields if f["title"] == "Note")
    assert "@here" not in note and note.startswith("level 2 of 5")
    mail = render("email", "escalate", [m], AT)
    assert "Note: level 2 of 5: <!channel>" in mail["text"] and "\x07" not in mail["text"]
    assert "<td>level 2 of 5: &lt;!channel&gt; @here &lt;script&gt;" in mail["html"]
    assert "Note: level 2 of 5" in render("inbox", "escalate", [m], AT)["body"]
    pd = render("pagerduty", "escalate", [m], AT)["payload"]["custom_details"]
    assert pd["note"].startswith("level 2 of 5") and "\x07" not in pd["note"]
    assert "Note" not in json.dumps(render("slack", "trigger", [message(event_detail=None)], AT))
