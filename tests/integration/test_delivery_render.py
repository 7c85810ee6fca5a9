"""Bodies rendered once, in Python, at a row's first claim; every attempt sends the stored bytes.

New-style rows are inserted as the SQL enqueue leaves them (payload '{}', body NULL, alert ids);
legacy rows (a payload, body NULL) are covered by test_delivery_engine and test_delivery_channels.
"""

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from email.message import Message as MailMessage
from typing import Any

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from alert_delivery.alerting.messages import alert_messages
from alert_delivery.channels.message import Message
from alert_delivery.config import Settings
from alert_delivery.delivery import body as body_module
from alert_delivery.delivery import store
from alert_delivery.delivery.engine import deliver_batch
from alert_delivery.delivery.loop import run as run_loop
from alert_delivery.delivery.ping import ping_webhook
from alert_delivery.delivery.registry import add_webhook
from tests.support.delivery import (
    FAST,
    delivery_env,
    enqueue,
    enqueue_new,
    insert_alerts,
    log_events,
    make_due,
    queue_rows,
    stored_body,
)
from tests.support.receivers import Received, Receiver, Reply, always, sequence, serve
from tests.support.smtp import Mailbox, smtp_server

__all__ = ["delivery_env"]

RUNBOOKS = "https://docs.example.com/runbooks"


def _hook(
    db_url: str, settings: Settings, url: str, kind: str = "webhook", **kwargs: object
) -> tuple[int, str | None]:
    added = add_webhook(
        db_url, name=f"{kind}-{url[-8:]}", kind=kind, url=url, settings=settings, **kwargs
    )  # type: ignore[arg-type]
    return added.webhook_id, added.generated_secret


def test_a_new_row_is_rendered_at_its_first_claim_and_the_body_stored_with_its_outcome(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    stored_when_received: list[str | None] = []

    def look(_n: int, got: Received) -> Reply:
        # The receiver reads the row while the request is in flight: the body is not stored yet
        # (it is written with the first outcome, in the statement that rewrites the row).
        with psycopg.connect(db_url, autocommit=True) as other:
            row = other.execute(
                "SELECT body FROM alert_delivery.delivery_queue WHERE message_id = %s::uuid",
                (got.headers["webhook-id"],),
            ).fetchone()
        stored_when_received.append(None if row is None else row[0])
        return Reply(200)

    settings = replace(delivery_env, runbook_url=RUNBOOKS)
    [alert_id] = insert_alerts(conn, title="merge: héllo ✓ <b>", payload={"z_score": 4.2})
    with serve(Receiver(look)) as rx:
        webhook_id, secret = _hook(db_url, settings, rx.url)
        [did] = enqueue_new(conn, webhook_id, [[alert_id]])
        assert stored_body(conn, did) is None
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=settings)
        [got] = rx.wait_for(1)
    assert (result.claimed, result.delivered) == (1, 1)
    body = stored_body(conn, did)
    assert body is not None and got.body == body.encode()
    assert stored_when_received == [None]
    assert "héllo ✓" in body, "compact JSON text, non-ASCII as is"
    assert body == json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    assert secret is not None
    envelope = Webhook(secret).verify(got.body, got.headers)
    assert envelope["type"] == "alert.triggered" and envelope["data"]["count"] == 1
    [message] = envelope["data"]["alerts"]
    assert (message["id"], message["title"]) == (alert_id, "merge: héllo ✓ <b>")
    # The alert's own https runbook (alert_delivery.runbooks) wins over the configured base.
    assert message["runbook_url"].startswith("https://")
    payload = conn.execute(
        "SELECT payload FROM alert_delivery.delivery_queue WHERE delivery_id = %s", (did,)
    ).fetchone()
    assert payload == ({},)


def test_a_retry_sends_the_stored_bytes_with_the_same_webhook_id(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    [alert_id] = insert_alerts(conn, title="naïve <!channel> title")
    with serve(Receiver(sequence(Reply(500), Reply(200)))) as rx:
        webhook_id, secret = _hook(db_url, delivery_env, rx.url, retry_schedule_s=[1, 1])
        [did] = enqueue_new(conn, webhook_id, [[alert_id]])
        first = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        assert (first.retrying, first.delivered) == (1, 0)
        body = stored_body(conn, did)
        # The alert changes between the attempts: the retry still sends what was rendered.
        conn.execute(
            "UPDATE alert_delivery.alerts SET occurrences = 9, title = 'changed'"
            " WHERE alert_id = %s",
            (alert_id,),
        )
        make_due(conn)
        second = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        assert second.delivered == 1
        got = rx.wait_for(2)
    assert body is not None and stored_body(conn, did) == body
    assert got[0].body == got[1].body == body.encode()
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
    assert got[0].headers["webhook-id"] == queue_rows(conn)[did]["message_id"]
    assert secret is not None
    verifier = Webhook(secret)
    first_seen, second_seen = (verifier.verify(g.body, g.headers) for g in got)
    assert first_seen == second_seen
    assert first_seen["data"]["alerts"][0]["title"] == "naïve <!channel> title"
    assert first_seen["data"]["alerts"][0]["occurrences"] == 1
    assert log_events(conn, did) == ["retry_scheduled", "delivered"]


def test_pagerduty_key_is_spliced_in_at_send_time_the_same_bytes_on_every_retry(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    key = "R0UTINGKEY0123456789abcdef012345"
    [alert_id] = insert_alerts(conn, alert_type="NOT_A_KNOWN_TYPE")
    with serve(Receiver(sequence(Reply(500), Reply(202)))) as rx:
        webhook_id, _ = _hook(
            db_url, delivery_env, rx.url, kind="pagerduty", secret=key, retry_schedule_s=[1]
        )
        [did] = enqueue_new(conn, webhook_id, [[alert_id]])
        assert deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).retrying
        make_due(conn)
        assert deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).delivered
        got = rx.wait_for(2)
    assert got[0].body == got[1].body
    sent = json.loads(got[0].body)
    assert sent["routing_key"] == key and sent["event_action"] == "trigger"
    assert sent["dedup_key"].startswith("alert-delivery/")
    stored = stored_body(conn, did)
    assert stored is not None and key not in stored
    assert {k: v for k, v in sent.items() if k != "routing_key"} == json.loads(stored)


def test_a_grouped_row_renders_one_message_with_all_its_alerts_in_order(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    alert_ids = insert_alerts(conn, 3)
    group = [alert_ids[2], alert_ids[0], alert_ids[1]]
    with serve(Receiver()) as rx:
        webhook_id, _ = _hook(db_url, delivery_env, rx.url)
        slack_id, _ = _hook(db_url, delivery_env, rx.url + "/slack", kind="slack")
        enqueue_new(conn, webhook_id, [group])
        enqueue_new(conn, slack_id, [group])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        got = {r.path: json.loads(r.body) for r in rx.wait_for(2)}
    assert (result.claimed, result.delivered) == (2, 2)
    envelope, slack = got["/hook"], got["/hook/slack"]
    assert envelope["data"]["count"] == 3
    assert [m["id"] for m in envelope["data"]["alerts"]] == group
    assert slack["text"] == "FIRING: 3 alerts (STATISTICAL)"
    assert [
        a["blocks"][3]["elements"][0]["text"].split(" · ")[0] for a in slack["attachments"]
    ] == [f"Alert #{i}" for i in group]


def test_a_row_that_cannot_be_rendered_is_dead_lettered_and_its_neighbours_delivered(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = body_module.render

    def fragile(
        kind: str, event: str, messages: Sequence[Message], at: datetime, *, runbook_base: str
    ) -> dict[str, Any]:
        if messages[0]["title"] == "poison":
            raise KeyError("severity")
        return real(kind, event, messages, at, runbook_base=runbook_base)

    monkeypatch.setattr(body_module, "render", fragile)
    good, poison = insert_alerts(conn), insert_alerts(conn, title="poison")
    with serve(Receiver()) as rx:
        webhook_id, _ = _hook(db_url, delivery_env, rx.url)
        ids = enqueue_new(conn, webhook_id, [good, poison, good, good])
        # A row whose alerts are gone (alert_id NULL, alert_ids naming nothing).
        conn.execute(
            "UPDATE alert_delivery.delivery_queue SET alert_id = NULL, alert_ids = '{987654321}'"
            " WHERE delivery_id = %s",
            (ids[2],),
        )
        [legacy] = enqueue(conn, webhook_id, [{"text": "legacy"}])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        received = rx.wait_for(3)
    assert (result.claimed, result.delivered, result.dead) == (5, 3, 2)
    rows = queue_rows(conn)
    assert [rows[i]["status"] for i in [*ids, legacy]] == [
        "delivered",
        "dead",
        "dead",
        "delivered",
        "delivered",
    ]
    assert rows[ids[1]]["last_error"] == "cannot render: KeyError: 'severity'"
    assert rows[ids[2]]["last_error"] == "cannot render: ValueError: none of its alerts exist"
    assert stored_body(conn, ids[1]) is None and stored_body(conn, legacy) is None
    assert log_events(conn, ids[1]) == ["dead_lettered"]
    detail = conn.execute(
        "SELECT detail FROM alert_delivery.delivery_log WHERE delivery_id = %s", (ids[2],)
    ).fetchone()
    assert detail == ("cannot render: ValueError: none of its alerts exist",)
    assert sorted(json.loads(r.body).get("text", "new") for r in received) == [
        "legacy",
        "new",
        "new",
    ]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with smtp_server(box) as port:
        yield box, port


def _text(msg: MailMessage) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


@pytest.mark.parametrize("event", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_notices_reach_email_and_the_inbox(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    smtp: tuple[Mailbox, int],
    event: str,
) -> None:
    box, port = smtp
    label = {"acknowledge": "ACKNOWLEDGED", "resolve": "RESOLVED"}[event]
    [alert_id] = insert_alerts(conn, alert_type="NOT_A_KNOWN_TYPE")
    mail = add_webhook(
        db_url,
        name="mail",
        kind="email",
        url=f"smtp://127.0.0.1:{port}",
        config={"to": ["oncall@example.com"], "from": "alerts@example.com"},
        settings=delivery_env,
        retry_schedule_s=[1],
    )
    inbox = add_webhook(
        db_url, name="inbox", kind="inbox", config={"recipients": ["ana"]}, settings=delivery_env
    )
    [mail_row] = enqueue_new(conn, mail.webhook_id, [[alert_id]], event=event)
    enqueue_new(conn, inbox.webhook_id, [[alert_id]], event=event)
    box.code = "451 try later"  # the mail is sent twice: the retry reads the stored body
    first = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
    assert (first.delivered, first.retrying) == (1, 1)
    box.code = "250 OK"
    make_due(conn)
    assert deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).delivered == 1
    [msg] = box.messages
    stored = json.loads(stored_body(conn, mail_row) or "{}")
    assert msg["Subject"] == stored["subject"]
    assert msg["Subject"].startswith(f"[{label}] [CRITICAL] merge: ")
    assert _text(msg).startswith(f"{label} [CRITICAL] merge: statistical latency anomaly")
    [(title, severity, text)] = conn.execute(
        "SELECT title, severity, body FROM alert_delivery.inbox_messages WHERE recipient = 'ana'"
    ).fetchall()
    assert title == f"{label} [CRITICAL] merge: merge: statistical latency anomaly"
    assert severity == "CRITICAL" and "Operation: merge" in text


def test_without_any_link_the_runbook_page_is_named_in_the_body(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    [alert_id] = insert_alerts(conn, alert_type="P99_DEGRADATION", payload={"runbook_url": ""})
    with serve(Receiver(always(200))) as rx:
        slack, _ = _hook(db_url, delivery_env, rx.url, kind="slack")
        enqueue_new(conn, slack, [[alert_id]])
        deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        [got] = rx.wait_for(1)
    assert "Runbook: docs/runbooks/p99-degradation.md" in got.body.decode()


def test_the_webhooks_test_ping_is_rendered_by_the_same_formatter(
    db_url: str, delivery_env: Settings
) -> None:
    key = "R0UTINGKEY0123456789abcdef012345"
    with serve(Receiver(always(202))) as rx:
        add_webhook(
            db_url, name="pd", kind="pagerduty", url=rx.url, secret=key, settings=delivery_env
        )
        attempt = ping_webhook(db_url, "pd", config=FAST, settings=delivery_env)
        got, closing = rx.wait_for(2)  # the trigger, then a resolve: no incident left open
    assert attempt.status == 202
    assert json.loads(closing.body)["event_action"] == "resolve"
    sent = json.loads(got.body)
    assert next(iter(sent)) == "routing_key" and sent["routing_key"] == key
    assert sent["event_action"] == "trigger" and sent["payload"]["severity"] == "info"
    assert sent["payload"]["summary"] == "TEST [INFO] test: alert-delivery test of webhook pd"


def test_a_crash_between_send_and_record_re_renders_with_the_same_webhook_id(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    """The lease of a claim that never recorded its outcome expires; the next claim renders the
    row again (no body was stored), sends it under the same webhook-id, stores that body, and
    the log says an earlier claim ended without an outcome."""
    [alert_id] = insert_alerts(conn)
    with serve(Receiver()) as rx:
        webhook_id, _ = _hook(db_url, delivery_env, rx.url)
        [did] = enqueue_new(conn, webhook_id, [[alert_id]])
        # What a crashed claimer leaves behind: leased, counted as started, no outcome, no body.
        conn.execute(
            "UPDATE alert_delivery.delivery_queue SET status = 'in_flight', leased_by = 'gone',"
            " leased_until = now() - interval '1 s', next_attempt_at = now() - interval '1 s',"
            " attempts_started = 1 WHERE delivery_id = %s",
            (did,),
        )
        assert deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).delivered
        [got] = rx.wait_for(1)
    row = queue_rows(conn)[did]
    assert got.headers["webhook-id"] == row["message_id"]
    assert stored_body(conn, did) == got.body.decode()
    [(event, detail)] = conn.execute(
        "SELECT event, detail FROM alert_delivery.delivery_log WHERE delivery_id = %s", (did,)
    ).fetchall()
    assert event == "delivered"
    assert "1 earlier claim(s) ended without an outcome" in detail
    started = conn.execute(
        "SELECT attempts, attempts_started FROM alert_delivery.delivery_queue"
        " WHERE delivery_id = %s",
        (did,),
    ).fetchone()
    assert started == (1, 2)


def test_the_claims_inline_messages_are_alert_messages(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    """The claim builds its messages inline as json (half the cost of jsonb): the same keys and
    values as alert_delivery.alert_messages (sql/functions/08_messages.sql)."""
    ids = insert_alerts(conn, 2, title="naïve <b>", payload={"z": [1, 2.5, None], "k": "v"})
    ids += insert_alerts(conn, 1, severity="INFO", payload={})
    conn.execute(
        'UPDATE alert_delivery.alerts SET labels = \'{"team": "db"}\','
        ' annotations = \'{"runbook_url": "https://r.example/x"}\','
        " acknowledged_by = 'ops' WHERE alert_id = %s",
        (ids[0],),
    )
    webhook_id, _ = _hook(db_url, delivery_env, "http://127.0.0.1:9/hook")
    enqueue_new(conn, webhook_id, [ids])

    async def claim() -> list[Any]:
        aconn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        try:
            async with aconn.transaction(force_rollback=True):
                [row] = await store.claim(aconn, limit=10, worker_id="t", lease_s=30.0)
        finally:
            await aconn.close()
        return row.messages or []

    inline = run_loop(claim())
    expected = alert_messages(conn, ids)
    assert [json.loads(json.dumps(m)) for m in inline] == expected
