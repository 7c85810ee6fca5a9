"""Email over a real aiosmtpd server, inbox rows, PagerDuty's routing key, DLQ, key rotation."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cryptography.fernet import Fernet

from alert_delivery.config import Settings, load_settings
from alert_delivery.delivery.dlq import Selection, list_dead, replay
from alert_delivery.delivery.engine import deliver_batch
from alert_delivery.delivery.registry import add_webhook
from alert_delivery.delivery.rotation import rotate_all
from alert_delivery.delivery.secrets import Vault
from alert_delivery.errors import InvalidInput
from tests.support.delivery import FAST, delivery_env, enqueue, log_events, queue_rows
from tests.support.receivers import Receiver, always, serve
from tests.support.smtp import Mailbox, smtp_server

__all__ = ["delivery_env"]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with smtp_server(box) as port:
        yield box, port


def test_email_is_delivered_over_smtp(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    hook = add_webhook(
        db_url,
        name="mail",
        kind="email",
        url=f"smtp://127.0.0.1:{port}",
        config={"to": ["oncall@example.com"], "from": "alerts@example.com"},
        settings=delivery_env,
    )
    [did] = enqueue(
        conn,
        hook.webhook_id,
        [{"subject": "CRITICAL: merge", "text": "p99 up", "html": "<b>p99 up</b>"}],
    )
    result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
    assert result.delivered == 1
    [msg] = box.messages
    assert msg["Subject"] == "CRITICAL: merge" and msg["To"] == "oncall@example.com"
    assert queue_rows(conn)[did]["message_id"] in msg["Message-ID"]


def test_email_5xx_is_permanent_4xx_retries(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    hook = add_webhook(
        db_url,
        name="mail",
        kind="email",
        url=f"smtp://127.0.0.1:{port}",
        config={"to": ["a@example.com"], "from": "b@example.com"},
        settings=delivery_env,
        retry_schedule_s=[60],
    )
    box.code = "451 try later"
    [first] = enqueue(conn, hook.webhook_id, [{"subject": "s", "text": "t"}])
    assert deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).retrying == 1
    box.code = "554 no"
    conn.execute("UPDATE alert_delivery.delivery_queue SET next_attempt_at = now()")
    assert deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).dead == 1
    assert queue_rows(conn)[first]["last_status"] == 554


def test_email_target_refused_by_ssrf_guard_without_allow_list(db_url: str) -> None:
    bare = load_settings({"ALERT_DELIVERY_SECRET_KEYS": Fernet.generate_key().decode()})
    with pytest.raises(InvalidInput):
        add_webhook(
            db_url,
            name="m",
            kind="email",
            url="smtp://127.0.0.1:25",
            config={"to": ["a@example.com"], "from": "b@example.com"},
            settings=bare,
        )


def test_inbox_rows_per_recipient_once(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    hook = add_webhook(
        db_url,
        name="inbox",
        kind="inbox",
        config={"recipients": ["ana", "bo"]},
        settings=delivery_env,
    )
    [did] = enqueue(
        conn, hook.webhook_id, [{"title": "merge slow", "body": "p99 3x", "severity": "WARNING"}]
    )
    assert deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).delivered == 1
    rows = conn.execute(
        "SELECT recipient, title, severity, delivery_id FROM alert_delivery.inbox_messages"
        " ORDER BY recipient"
    ).fetchall()
    assert rows == [("ana", "merge slow", "WARNING", did), ("bo", "merge slow", "WARNING", did)]


def test_pagerduty_gets_routing_key_which_is_never_stored_in_the_payload(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver(always(202))) as rx:
        hook = add_webhook(
            db_url,
            name="pd",
            kind="pagerduty",
            url=rx.url,
            secret="R0UTINGKEY0123456789abcdef012345",
            settings=delivery_env,
        )
        enqueue(conn, hook.webhook_id, [{"event_action": "trigger", "payload": {"summary": "x"}}])
        assert (
            deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).delivered == 1
        )
        body = json.loads(rx.wait_for(1)[0].body)
    assert body["routing_key"] == "R0UTINGKEY0123456789abcdef012345"
    assert body["event_action"] == "trigger"
    stored = conn.execute("SELECT payload::text FROM alert_delivery.delivery_queue").fetchone()
    assert stored is not None and "R0UTINGKEY" not in stored[0]


def test_dlq_list_and_replay_by_id_webhook_and_time(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver(always(400))) as rx:
        a = add_webhook(db_url, name="a", kind="webhook", url=rx.url, settings=delivery_env)
        b = add_webhook(db_url, name="b", kind="webhook", url=rx.url + "2", settings=delivery_env)
        ids_a = enqueue(conn, a.webhook_id, [{"i": 1}, {"i": 2}])
        ids_b = enqueue(conn, b.webhook_id, [{"i": 3}])
        deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        dead = list_dead(db_url)
        assert sorted(d.delivery_id for d in dead) == sorted(ids_a + ids_b)
        assert all(d.last_status == 400 and d.last_error == "HTTP 400" for d in dead)
        assert [d.webhook for d in list_dead(db_url, Selection(webhook="b"))] == ["b"]
        with pytest.raises(InvalidInput):
            replay(db_url, Selection())
        with pytest.raises(InvalidInput, match="no webhook named"):
            replay(db_url, Selection(webhook="nope"))
        assert replay(db_url, Selection(ids=[ids_a[0]])) == 1
        assert replay(db_url, Selection(webhook="b")) == 1
        future = datetime.now(UTC) + timedelta(hours=1)
        assert replay(db_url, Selection(since=future)) == 0
        assert replay(db_url, Selection(since=datetime.now(UTC) - timedelta(hours=1))) == 1
        rx.behaviour = always(200)
        assert (
            deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).delivered == 3
        )
        ids_seen = rx.ids()
    assert log_events(conn, ids_a[0]) == ["dead_lettered", "replayed", "delivered"]
    assert ids_seen[0] in ids_seen[3:], "replay keeps the webhook-id"


def test_keys_rotate_reencrypts_and_nothing_is_plain_text(
    db_url: str,
    conn: psycopg.Connection,
    delivery_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "http://127.0.0.1:9/services/T0/B0/VERYSECRETPATH"
    hook = add_webhook(db_url, name="s", kind="webhook", url=url, settings=delivery_env)
    assert hook.generated_secret
    enqueue(conn, hook.webhook_id, [{"text": "x"}])
    new_key = Fernet.generate_key().decode()
    both = f"{new_key},{delivery_env.secret_keys[0]}"
    monkeypatch.setenv("ALERT_DELIVERY_SECRET_KEYS", both)
    assert rotate_all(db_url) == 1
    url_token, secret_token = conn.execute(
        "SELECT url_encrypted, secret_encrypted FROM alert_delivery.webhooks"
    ).fetchone() or ("", "")
    only_new = Vault((new_key,))
    assert only_new.decrypt(url_token) == url
    assert only_new.decrypt(secret_token) == hook.generated_secret
    # Every text column of every table: no URL, path, secret or key in plain text.
    cols = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'alert_delivery'"
        " AND data_type IN ('text', 'jsonb', 'character varying', 'json')"
    ).fetchall()
    needles = ["VERYSECRETPATH", hook.generated_secret, new_key, delivery_env.secret_keys[0]]
    for table, column in cols:
        for needle in needles:
            hit = conn.execute(
                f'SELECT count(*) FROM alert_delivery."{table}" WHERE "{column}"::text LIKE %s',
                (f"%{needle}%",),
            ).fetchone()
            assert hit == (0,), f"{needle[:6]}… in plain text in {table}.{column}"
