"""The engine against real receivers on 127.0.0.1 and a real PostgreSQL."""

import json
from dataclasses import replace

import psycopg
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from alert_delivery.config import Settings
from alert_delivery.delivery.engine import deliver_batch
from alert_delivery.delivery.registry import add_webhook
from tests.support.delivery import (
    FAST,
    client_env,
    delivery_env,
    enqueue,
    http_client,
    log_events,
    make_due,
    queue_rows,
)
from tests.support.receivers import Receiver, Reply, always, closed_port, flaky, sequence, serve

# Every test here runs once per HTTP client (client_env).
__all__ = ["client_env", "delivery_env", "http_client"]


def _hook(db_url: str, settings: Settings, url: str, **kwargs: object) -> tuple[int, str | None]:
    added = add_webhook(
        db_url,
        name=f"h{url[-12:]}{len(kwargs)}",
        kind="webhook",
        url=url,
        settings=settings,
        **kwargs,
    )  # type: ignore[arg-type]
    return added.webhook_id, added.generated_secret


def test_delivers_signed_body_verifiable_with_standardwebhooks(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver()) as rx:
        webhook_id, secret = _hook(db_url, client_env, rx.url)
        assert secret is not None and secret.startswith("whsec_")
        ids = enqueue(conn, webhook_id, [{"text": "héllo", "n": i} for i in range(3)])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert (result.claimed, result.delivered, result.first_id, result.last_id) == (
            3,
            3,
            ids[0],
            ids[-1],
        )
        received = rx.wait_for(3)
    verifier = Webhook(secret)
    rows = queue_rows(conn)
    for got in received:
        payload = verifier.verify(got.body, got.headers)
        assert payload["text"] == "héllo"
        assert got.headers["webhook-id"] in {r["message_id"] for r in rows.values()}
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["User-Agent"].startswith("alert-delivery/")
    assert {r["status"] for r in rows.values()} == {"delivered"}
    assert log_events(conn, ids[0]) == ["delivered"]
    health = conn.execute(
        "SELECT total, succeeded, status, avg_latency_ms > 0, p95_latency_ms > 0"
        " FROM alert_delivery.webhook_health WHERE webhook_id = %s",
        (webhook_id,),
    ).fetchone()
    assert health == (3, 3, "healthy", True, True)


def test_retry_then_deliver_keeps_the_webhook_id(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver(sequence(Reply(503), Reply(200)))) as rx:
        webhook_id, _ = _hook(db_url, client_env, rx.url, retry_schedule_s=[1, 1])
        [did] = enqueue(conn, webhook_id, [{"a": 1}])
        first = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert (first.retrying, first.delivered) == (1, 0)
        row = queue_rows(conn)[did]
        assert (row["status"], row["attempts"], row["last_status"]) == ("pending", 1, 503)
        make_due(conn)
        second = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert second.delivered == 1
        got = rx.wait_for(2)
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
    assert got[0].body == got[1].body
    assert log_events(conn, did) == ["retry_scheduled", "delivered"]


def test_flaky_receiver_eventually_gets_everything_once_delivered(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver(flaky(0.3))) as rx:
        webhook_id, _ = _hook(
            db_url, client_env, rx.url, retry_schedule_s=[0] * 10, rate_limit_per_s=1000.0
        )
        ids = enqueue(conn, webhook_id, [{"n": i} for i in range(40)])
        for _ in range(12):
            deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
            make_due(conn)
            if all(r["status"] == "delivered" for r in queue_rows(conn).values()):
                break
        rows = queue_rows(conn)
        assert {r["status"] for r in rows.values()} == {"delivered"}
        bodies = [json.loads(b)["n"] for b in rx.bodies()]
    assert set(bodies) == set(range(40))
    logged = conn.execute(
        "SELECT count(*) FROM alert_delivery.delivery_log WHERE event IN"
        " ('delivered', 'retry_scheduled')"
    ).fetchone()
    assert logged is not None and logged[0] == len(bodies), "every attempt leaves a log row"
    assert len(ids) == 40


def test_slow_receiver_times_out_and_is_retried(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver(always(200, delay_s=1.5))) as rx:
        webhook_id, _ = _hook(db_url, client_env, rx.url, retry_schedule_s=[60])
        [did] = enqueue(conn, webhook_id, [{"slow": True}])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        rx.wait_for(1)
    assert result.retrying == 1
    row = queue_rows(conn)[did]
    assert row["status"] == "pending" and row["last_error"] == "timed out"


def test_429_retry_after_is_honoured(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver(always(429, headers={"Retry-After": "120"}))) as rx:
        webhook_id, _ = _hook(db_url, client_env, rx.url, retry_schedule_s=[1])
        [did] = enqueue(conn, webhook_id, [{"x": 1}])
        deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
    wait = conn.execute(
        "SELECT extract(epoch FROM next_attempt_at - now()) FROM alert_delivery.delivery_queue"
        " WHERE delivery_id = %s",
        (did,),
    ).fetchone()
    assert wait is not None and 110 < float(wait[0]) <= 120
    assert queue_rows(conn)[did]["last_status"] == 429


def test_410_disables_webhook_and_dead_letters_its_queue(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    with serve(Receiver(always(410))) as rx:
        webhook_id, _ = _hook(db_url, client_env, rx.url, rate_limit_per_s=1.0)
        ids = enqueue(conn, webhook_id, [{"i": i} for i in range(3)])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert len(rx.requests) == 1, "the bucket let one through; the rest were deferred"
    assert result.dead == 1 and result.deferred == 2
    active = conn.execute(
        "SELECT active, disabled_reason FROM alert_delivery.webhooks WHERE webhook_id = %s",
        (webhook_id,),
    ).fetchone()
    assert active is not None and active[0] is False and "410" in active[1]
    rows = queue_rows(conn)
    assert {r["status"] for r in rows.values()} == {"dead"}
    assert rows[ids[0]]["last_status"] == 410
    assert "410" in rows[ids[1]]["last_error"]


def test_permanent_4xx_and_redirect_are_dead_without_following(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    redirect = Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data"})
    with serve(Receiver(sequence(redirect, Reply(400)))) as rx:
        webhook_id, _ = _hook(db_url, client_env, rx.url)
        ids = enqueue(conn, webhook_id, [{"i": 1}, {"i": 2}])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        assert len(rx.requests) == 2 and all(r.path == "/hook" for r in rx.requests)
    assert result.dead == 2
    rows = queue_rows(conn)
    assert sorted(r["last_status"] for r in rows.values()) == [302, 400]
    assert all("169.254" not in (r["last_error"] or "") for r in rows.values())
    assert log_events(conn, ids[0]) == ["dead_lettered"]


def test_connection_refused_retries_then_dead_letters(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/hook"
    webhook_id, _ = _hook(db_url, client_env, url, retry_schedule_s=[0])
    [did] = enqueue(conn, webhook_id, [{"i": 1}])
    first = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
    assert first.retrying == 1
    make_due(conn)
    second = deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
    assert second.dead == 1
    row = queue_rows(conn)[did]
    assert row["status"] == "dead" and row["attempts"] == 2
    assert "connection failed" in row["last_error"] and "retries exhausted" in row["last_error"]
    assert "Connection refused" in row["last_error"]
    assert str(port) not in row["last_error"] and "127.0.0.1" not in row["last_error"]


def test_signing_secret_rotation_sends_both_signatures_until_finished(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    from alert_delivery.delivery.registry import rotate_signing_secret

    with serve(Receiver()) as rx:
        webhook_id, old = _hook(db_url, client_env, rx.url)
        name = conn.execute(
            "SELECT name FROM alert_delivery.webhooks WHERE webhook_id = %s", (webhook_id,)
        ).fetchone()[0]  # type: ignore[index]
        new = rotate_signing_secret(db_url, name, settings=client_env)
        assert new and old and new != old
        enqueue(conn, webhook_id, [{"n": 1}])
        deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        rotate_signing_secret(db_url, name, finish=True, settings=client_env)
        enqueue(conn, webhook_id, [{"n": 2}])
        deliver_batch(db_url, worker_id="t", config=FAST, settings=client_env)
        during, after = rx.wait_for(2)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(during.body, during.headers) == {"n": 1}
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(after.body, after.headers) == {"n": 2}


class _CountingReceiver(Receiver):
    """Counts how many requests are inside the handler at once."""

    def __init__(self) -> None:
        super().__init__(always(200, delay_s=0.03))
        self.inside = 0
        self.most_inside = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.inside += 1  # the receiver's loop is one thread: no lock needed
        self.most_inside = max(self.most_inside, self.inside)
        try:
            return await super().handle(request)
        finally:
            self.inside -= 1


def test_concurrency_is_capped_across_batches_in_flight_and_each_row_sent_once(
    db_url: str, conn: psycopg.Connection, client_env: Settings
) -> None:
    config = replace(FAST, sender=replace(FAST.sender, concurrency=4))
    with serve(_CountingReceiver()) as rx:
        webhook_id, _ = _hook(db_url, client_env, rx.url, rate_limit_per_s=1000.0)
        ids = enqueue(conn, webhook_id, [{"n": i} for i in range(30)])
        # Two rows per lane first (8), then the rest: two batches share the four lanes.
        result = deliver_batch(db_url, worker_id="t", config=config, settings=client_env)
        assert (result.claimed, result.delivered) == (30, 30)
        assert rx.most_inside == 4
        assert sorted(json.loads(b)["n"] for b in rx.bodies()) == list(range(30))
    rows = queue_rows(conn)
    assert {rows[i]["status"] for i in ids} == {"delivered"}
