"""An escalation travels the whole way: alert -> trigger delivered -> nobody acknowledges ->
escalation queued -> the delivery engine signs and POSTs it to a real receiver on 127.0.0.1."""

import psycopg
from standardwebhooks.webhooks import Webhook

from alert_delivery.alerting import acknowledge
from alert_delivery.config import Settings
from alert_delivery.delivery.engine import deliver_batch
from alert_delivery.delivery.registry import add_webhook
from alert_delivery.escalation import add_route, run_escalations
from tests.support.alerting import alert
from tests.support.delivery import FAST, delivery_env
from tests.support.receivers import Receiver, always, serve

__all__ = ["delivery_env"]  # a fixture: imported so pytest finds it


def test_an_unacknowledged_critical_alert_reaches_the_escalation_receiver_signed(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    with serve(Receiver(always(200))) as team, serve(Receiver(always(200))) as oncall:
        add_webhook(db_url, name="team", kind="slack", url=team.url, settings=delivery_env)
        hook = add_webhook(
            db_url, name="oncall", kind="webhook", url=oncall.url, settings=delivery_env
        )
        assert hook.generated_secret is not None
        add_route(conn, "on-call", webhooks=["oncall"])

        raised = alert(conn, severity="CRITICAL")
        assert deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env).delivered
        assert b"FIRING [CRITICAL] merge" in team.wait_for(1)[0].body
        assert oncall.requests == []

        [action] = run_escalations(conn)
        assert action.queued == 1
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        assert (result.delivered, result.retrying, result.dead) == (1, 0, 0)
        [got] = oncall.wait_for(1)
        body = Webhook(hook.generated_secret).verify(got.body, got.headers)
        assert body["type"] == "alert.escalated"
        assert body["data"]["alerts"][0]["id"] == raised.alert_id
        assert len(team.requests) == 1  # the team's own channel is not the escalation route

        acknowledge(conn, raised.alert_id, by="alice")
        conn.execute("UPDATE alert_delivery.escalations SET next_at = now()")
        assert run_escalations(conn) == []
        deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
        assert len(oncall.requests) == 1
    events = [
        r[0]
        for r in conn.execute(
            "SELECT event FROM alert_delivery.delivery_log WHERE alert_id = %s ORDER BY log_id",
            (raised.alert_id,),
        )
    ]
    assert events.count("escalated") == 1
    assert events.count("delivered") >= 2
