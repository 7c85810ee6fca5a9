"""The breaker acts per attempt, 429 throttles, deferrals are counted, bad webhooks are set aside.

Real receivers on 127.0.0.1; each drain is one Dagster-style ``deliver_batch``.
"""

import time
from dataclasses import replace

import psycopg

from alert_delivery.config import Settings
from alert_delivery.delivery.engine import deliver_batch
from alert_delivery.delivery.registry import add_webhook, set_active
from tests.support.delivery import FAST, delivery_env, enqueue, log_events, make_due, queue_rows
from tests.support.receivers import Receiver, Reply, always, sequence, serve

__all__ = ["delivery_env"]
THRESHOLD = FAST.breaker_threshold
LANES = FAST.sender.concurrency


def _health(conn: psycopg.Connection, webhook_id: int) -> dict[str, object]:
    cur = conn.execute(
        "SELECT breaker_state, consecutive_failures, deferred, throttled, throttled_until,"
        " breaker_opened_at FROM alert_delivery.webhook_health WHERE webhook_id = %s",
        (webhook_id,),
    )
    cols = [c.name for c in cur.description or []]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(cols, row, strict=True))


def _events(conn: psycopg.Connection, webhook_id: int) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT event FROM alert_delivery.delivery_log WHERE webhook_id = %s ORDER BY log_id",
            (webhook_id,),
        ).fetchall()
    ]


def _wait(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_the_breaker_stops_new_requests_after_the_fifth_failure_and_probes_once(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver(always(500, delay_s=0.05))) as rx:
        hook = add_webhook(
            db_url,
            name="down",
            kind="webhook",
            url=rx.url,
            settings=delivery_env,
            rate_limit_per_s=1e5,
        )
        ids = enqueue(conn, hook.webhook_id, [{"i": i} for i in range(300)])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        sent = len(rx.requests)
        # The lanes started at most LANES requests before the first answers came back; after the
        # fifth failure no new one started.
        assert sent <= THRESHOLD + LANES, sent
        assert result.retrying == sent and result.deferred == len(ids) - sent
        health = _health(conn, hook.webhook_id)
        assert health["breaker_state"] == "open"
        assert health["deferred"] == len(ids) - sent
        events = _events(conn, hook.webhook_id)
        assert events.count("breaker_opened") == 1
        assert "deferred" not in events, "deferrals are counted, not logged one by one"
        assert events.count("retry_scheduled") == sent

        # Half-open after the cooldown: every row is due, exactly one probe goes out.
        opened = health["breaker_opened_at"]
        _wait(
            lambda: (
                conn.execute(
                    "SELECT now() > %s + make_interval(secs => %s)",
                    (opened, FAST.breaker_cooldown_s),
                ).fetchone()
                == (True,)
            )
        )
        make_due(conn)
        again = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        assert len(rx.requests) == sent + 1, "one probe while the breaker is open"
        assert again.retrying == 1 and again.deferred == again.claimed - 1
    assert _health(conn, hook.webhook_id)["breaker_state"] == "open"
    assert _events(conn, hook.webhook_id).count("breaker_opened") == 1
    statuses = {r["status"] for r in queue_rows(conn).values()}
    assert statuses == {"pending"}, "nothing is lost or dropped while the breaker is open"


def test_a_probe_that_succeeds_closes_the_breaker_and_everything_flows(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    replies = [Reply(500)] * THRESHOLD + [Reply(200)]
    config = replace(FAST, sender=replace(FAST.sender, concurrency=1))
    with serve(Receiver(sequence(*replies))) as rx:
        hook = add_webhook(
            db_url,
            name="flaky",
            kind="webhook",
            url=rx.url,
            settings=delivery_env,
            rate_limit_per_s=1000.0,
        )
        ids = enqueue(conn, hook.webhook_id, [{"i": i} for i in range(40)])
        deliver_batch(db_url, worker_id="t", config=config, settings=delivery_env)
        assert len(rx.requests) == THRESHOLD
        opened = _health(conn, hook.webhook_id)["breaker_opened_at"]
        _wait(
            lambda: (
                conn.execute(
                    "SELECT now() > %s + make_interval(secs => %s)",
                    (opened, FAST.breaker_cooldown_s),
                ).fetchone()
                == (True,)
            )
        )
        make_due(conn)
        deliver_batch(db_url, worker_id="t", config=config, settings=delivery_env)
        assert len(rx.requests) == THRESHOLD + 1, "the probe alone"
        assert _health(conn, hook.webhook_id)["breaker_state"] == "closed"
        make_due(conn)
        deliver_batch(db_url, worker_id="t", config=config, settings=delivery_env)
    assert {queue_rows(conn)[i]["status"] for i in ids} == {"delivered"}


def test_after_the_first_410_no_new_request_starts(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver(always(410, delay_s=0.05))) as rx:
        hook = add_webhook(
            db_url,
            name="gone",
            kind="webhook",
            url=rx.url,
            settings=delivery_env,
            rate_limit_per_s=1e5,
        )
        enqueue(conn, hook.webhook_id, [{"i": i} for i in range(200)])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        assert len(rx.requests) <= LANES, len(rx.requests)
    assert result.dead == 200 and result.delivered == 0
    active = conn.execute(
        "SELECT active, disabled_reason FROM alert_delivery.webhooks WHERE webhook_id = %s",
        (hook.webhook_id,),
    ).fetchone()
    assert active is not None and active[0] is False and "410" in active[1]
    assert {r["status"] for r in queue_rows(conn).values()} == {"dead"}


def test_429_defers_the_webhook_until_retry_after_and_is_not_a_failure(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    throttle = Reply(429, headers={"Retry-After": "30"})
    with serve(Receiver(lambda _n, _r: throttle)) as rx:
        hook = add_webhook(
            db_url,
            name="busy",
            kind="webhook",
            url=rx.url,
            settings=delivery_env,
            rate_limit_per_s=1e5,
        )
        ids = enqueue(conn, hook.webhook_id, [{"i": i} for i in range(100)])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        sent = len(rx.requests)
        assert 1 <= sent <= LANES
        assert result.throttled == sent and result.deferred == len(ids) - sent
        health = _health(conn, hook.webhook_id)
        assert health["breaker_state"] == "closed" and health["consecutive_failures"] == 0
        assert health["throttled"] == sent and health["deferred"] == len(ids) - sent
        # Every row waits for the time the receiver asked (30 s), none much longer.
        waits = conn.execute(
            "SELECT min(extract(epoch FROM next_attempt_at - now())),"
            " max(extract(epoch FROM next_attempt_at - now()))"
            " FROM alert_delivery.delivery_queue"
        ).fetchone()
        assert waits is not None and waits[0] >= 28 and waits[1] <= 31, waits
        # Another process (a second drain) respects the shared throttle.
        conn.execute(
            "UPDATE alert_delivery.delivery_queue SET next_attempt_at = now()"
            " WHERE delivery_id = %s",
            (ids[-1],),
        )
        deliver_batch(db_url, worker_id="t2", config=FAST, settings=delivery_env)
        assert len(rx.requests) == sent
    throttled = [e for e in _events(conn, hook.webhook_id) if e == "throttled"]
    assert len(throttled) == sent, "each 429 is an attempt in the log; deferrals are not"
    assert "deferred" not in log_events(conn)


def test_a_webhook_that_makes_the_claim_fail_is_paused_and_the_others_flow(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver()) as good_rx, serve(Receiver()) as bad_rx:
        good = add_webhook(
            db_url,
            name="good",
            kind="webhook",
            url=good_rx.url,
            settings=delivery_env,
            rate_limit_per_s=1e5,
        )
        bad = add_webhook(db_url, name="bad", kind="webhook", url=bad_rx.url, settings=delivery_env)
        # Whatever makes the permit of one webhook fail (here: a trigger on its health row)
        # must not stop the claim for the others.
        conn.execute(
            "CREATE FUNCTION alert_delivery.test_poison() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'integer out of range' USING ERRCODE = '22003'; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER poison BEFORE UPDATE ON alert_delivery.webhook_health FOR EACH ROW"
            f" WHEN (OLD.webhook_id = {int(bad.webhook_id)})"
            " EXECUTE FUNCTION alert_delivery.test_poison()".encode()
        )
        good_ids = enqueue(conn, good.webhook_id, [{"i": i} for i in range(20)])
        bad_ids = enqueue(conn, bad.webhook_id, [{"i": i} for i in range(5)])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        assert result.delivered == 20 and len(good_rx.requests) == 20
        assert bad_rx.requests == []
        rows = queue_rows(conn)
        assert {rows[i]["status"] for i in good_ids} == {"delivered"}
        assert {rows[i]["status"] for i in bad_ids} == {"pending"}, "its rows wait, not die"
        assert all("paused by the delivery engine" in rows[i]["last_error"] for i in bad_ids)
        shown = conn.execute(
            "SELECT active, disabled_reason FROM alert_delivery.webhooks WHERE webhook_id = %s",
            (bad.webhook_id,),
        ).fetchone()
        assert shown is not None and shown[0] is False
        assert "a claim failed: NumericValueOutOfRange" in shown[1]
        assert _events(conn, bad.webhook_id) == ["paused"]
        # Fixed by an operator and enabled again: its rows go at once.
        conn.execute("DROP TRIGGER poison ON alert_delivery.webhook_health")
        set_active(db_url, "bad", True)
        again = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        assert again.delivered == 5 and len(bad_rx.requests) == 5
