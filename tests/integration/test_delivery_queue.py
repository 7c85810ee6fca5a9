"""The claim: index use, SKIP LOCKED between claimers, lease expiry, release, out-of-order ids."""

import asyncio
import json
from typing import Any

import psycopg

from alert_delivery.config import Settings
from alert_delivery.db.queries import query
from alert_delivery.delivery import store
from alert_delivery.delivery.registry import add_webhook
from tests.support.delivery import delivery_env, enqueue, log_events, queue_rows

__all__ = ["delivery_env"]


def _hook(db_url: str, settings: Settings) -> int:
    return add_webhook(
        db_url, name="q", kind="webhook", url="http://127.0.0.1:9/q", settings=settings
    ).webhook_id


def test_claim_uses_the_due_index(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    webhook_id = _hook(db_url, delivery_env)
    conn.execute(
        "INSERT INTO alert_delivery.delivery_queue (webhook_id, event, seq, payload, status,"
        " next_attempt_at, delivered_at)"
        " SELECT %s, 'trigger', g, '{}', CASE WHEN g %% 50 = 0 THEN 'pending' ELSE 'delivered' END,"
        " now() - (g || ' s')::interval, now() FROM generate_series(1, 20000) g",
        (webhook_id,),
    )
    conn.execute("ANALYZE alert_delivery.delivery_queue")
    with conn.transaction():
        plan = "\n".join(
            str(r[0])
            for r in conn.execute(
                b"EXPLAIN " + query("delivery", "claim").encode(),
                {
                    "limit": 100,
                    "worker_id": "x",
                    "lease_s": 30,
                    "min_age_s": 0,
                    "cooldown_s": 60,
                    "only": None,
                },
            ).fetchall()
        )
    assert "delivery_queue_due" in plan, plan
    assert "Seq Scan on delivery_queue" not in plan, plan
    ids = [
        r[0]
        for r in conn.execute(
            "UPDATE alert_delivery.delivery_queue SET status = 'in_flight', leased_by = 'x'"
            " WHERE status = 'pending' RETURNING delivery_id"
        ).fetchall()
    ]
    conn.execute("ANALYZE alert_delivery.delivery_queue")
    # [delivery_id, status, delay_s, http_status, error, latency_ms, log_event, counted]
    outcomes = [[i, "delivered", 0.0, 200, None, 1.0, "delivered", True] for i in ids]
    params = {
        "outcomes": json.dumps(outcomes),
        "body_ids": ids[:10],
        "bodies": ["{}"] * 10,
        "worker_id": "x",
        "run_id": None,
    }
    with conn.transaction():
        record_plan = "\n".join(
            str(r[0])
            for r in conn.execute(
                b"EXPLAIN " + query("delivery_outcomes", "record").encode(), params
            )
        )
    # Outcomes of a batch are primary-key lookups, never a scan of the queue.
    assert "Seq Scan on delivery_queue" not in record_plan, record_plan


def test_two_claimers_never_share_a_row_and_expired_leases_come_back(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    webhook_id = _hook(db_url, delivery_env)
    ids = enqueue(conn, webhook_id, [{"i": i} for i in range(50)])

    async def claim_all() -> tuple[list[int], list[int]]:
        a = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        b = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        try:
            got_a, got_b = await asyncio.gather(
                store.claim(a, limit=30, worker_id="a", lease_s=0.2),
                store.claim(b, limit=30, worker_id="b", lease_s=60),
            )
        finally:
            await a.close()
            await b.close()
        return [r.delivery_id for r in got_a], [r.delivery_id for r in got_b]

    got_a, got_b = asyncio.run(claim_all())
    assert not set(got_a) & set(got_b)
    assert sorted(got_a + got_b) == ids[: len(got_a) + len(got_b)]
    rows = queue_rows(conn)
    assert all(rows[i]["status"] == "in_flight" for i in got_a + got_b)

    async def reclaim() -> list[Any]:
        await asyncio.sleep(0.3)
        c = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        try:
            return await store.claim(c, limit=100, worker_id="c", lease_s=60)
        finally:
            await c.close()

    again = {r.delivery_id for r in asyncio.run(reclaim())}
    assert set(got_a) <= again, "a's lease expired: its rows are due again"
    assert not set(got_b) & again, "b's lease holds"
    assert again - set(got_a) == set(ids) - set(got_a) - set(got_b)


def test_outcome_of_a_lost_lease_is_not_written(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    webhook_id = _hook(db_url, delivery_env)
    [did] = enqueue(conn, webhook_id, [{"i": 1}])

    async def go() -> int:
        c = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        try:
            await store.claim(c, limit=1, worker_id="old", lease_s=60)
            await c.execute(
                "UPDATE alert_delivery.delivery_queue SET leased_by = 'new' WHERE delivery_id = %s",
                (did,),
            )
            outcome = store.Outcome(did, webhook_id, "delivered", 0.0, "delivered", True, 200)
            written, _ = await store.record(
                c, [outcome], {}, worker_id="old", run_id=None, breaker_threshold=5
            )
            return written
        finally:
            await c.close()

    assert asyncio.run(go()) == 0
    assert queue_rows(conn)[did]["status"] == "in_flight"
    assert log_events(conn, did) == []


def test_release_returns_unattempted_rows(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    webhook_id = _hook(db_url, delivery_env)
    ids = enqueue(conn, webhook_id, [{"i": 1}, {"i": 2}])

    async def go() -> None:
        c = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        try:
            await store.claim(c, limit=2, worker_id="w", lease_s=60)
            await c.execute(query("delivery", "release"), {"ids": ids, "worker_id": "w"})
        finally:
            await c.close()

    asyncio.run(go())
    rows = queue_rows(conn)
    assert [rows[i]["status"] for i in ids] == ["pending", "pending"]
    assert [rows[i]["attempts"] for i in ids] == [0, 0]
