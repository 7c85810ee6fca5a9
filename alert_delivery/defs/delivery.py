"""Dagster driver of the delivery engine: sensor -> deliver_pending runs, retry sweep, replay.

The engine (``alert_delivery.delivery``) does the work; these wrappers pass configuration, tag
runs with the delivery-id range and report delivered / retrying / dead counts.
"""

from datetime import datetime

import dagster as dg

from alert_delivery.defs.resources import PostgresResource
from alert_delivery.delivery.dlq import Selection, replay
from alert_delivery.delivery.engine import BatchResult, EngineConfig, deliver_batch
from alert_delivery.delivery.sender import SenderConfig
from alert_delivery.delivery.sensing import plan_delivery_runs
from alert_delivery.errors import InvalidInput
from alert_delivery.inputs import parse_time


class WebhookSenderResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """How runs send: concurrency, explicit timeouts, the request body cap, the row lease."""

    concurrency: int = 50
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    body_cap_bytes: int = 256 * 1024
    lease_s: float = 120.0

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            sender=SenderConfig(
                concurrency=self.concurrency,
                connect_timeout_s=self.connect_timeout_s,
                read_timeout_s=self.read_timeout_s,
                body_cap_bytes=self.body_cap_bytes,
            ),
            lease_s=self.lease_s,
        )


class DeliverConfig(dg.Config):
    limit: int = 1000
    """Most rows this run claims (in batches of up to 500)."""
    min_age_s: float = 0.0
    """Only rows due at least this long: the sensor's grace period while a worker is alive."""


def _report(context: dg.OpExecutionContext, result: BatchResult) -> dg.Output[dict[str, int]]:
    """Counts as run tags and metadata. A run that dead-lettered deliveries logs a WARNING per
    webhook with the (redacted) reasons, puts the counts by reason in its metadata and fails,
    so the UI shows it red; its outcomes are all recorded first."""
    counts = {
        "claimed": result.claimed,
        "delivered": result.delivered,
        "retrying": result.retrying,
        "dead": result.dead,
        "deferred": result.deferred,
        "throttled": result.throttled,
    }
    tags = {f"alert_delivery/{k}": str(v) for k, v in counts.items()}
    if result.first_id is not None:
        tags["alert_delivery/first_id"] = str(result.first_id)
        tags["alert_delivery/last_id"] = str(result.last_id)
    context.instance.add_run_tags(context.run_id, tags)
    context.log.info(
        f"delivered {result.delivered}, retrying {result.retrying}, dead {result.dead}, "
        f"deferred {result.deferred}, throttled {result.throttled} of {result.claimed} claimed"
    )
    metadata: dict[str, dg.RawMetadataValue] = dict(counts)
    metadata["delivery_ids"] = (
        f"{result.first_id}-{result.last_id}" if result.first_id is not None else "none"
    )
    if not result.dead_reasons:
        return dg.Output(counts, metadata=metadata)
    by_webhook: dict[str, list[str]] = {}
    for (webhook, reason), n in sorted(result.dead_reasons.items()):
        by_webhook.setdefault(webhook, []).append(f"{n} x {reason}")
        metadata[f"dead: {webhook}: {reason}"[:200]] = n
    for webhook, reasons in by_webhook.items():
        context.log.warning(f"webhook {webhook}: dead-lettered " + "; ".join(reasons))
    raise dg.Failure(
        description=f"{result.dead} of {result.claimed} deliveries dead-lettered "
        f"({', '.join(sorted(by_webhook))}); see `alert-delivery dlq list`",
        metadata=metadata,
        allow_retries=False,
    )


def _deliver(
    context: dg.OpExecutionContext,
    postgres: PostgresResource,
    webhook_sender: WebhookSenderResource,
    limit: int,
    min_age_s: float,
) -> dg.Output[dict[str, int]]:
    if limit <= 0:
        raise InvalidInput("must be positive", where="limit")
    with postgres.guarded_url() as url:
        result = deliver_batch(
            url,
            limit=limit,
            worker_id=f"dagster:{context.run_id}",
            run_id=context.run_id,
            min_age_s=min_age_s,
            config=webhook_sender.engine_config(),
        )
    return _report(context, result)


@dg.op(out=dg.Out(dict))
def deliver_due_rows(
    context: dg.OpExecutionContext,
    config: DeliverConfig,
    postgres: PostgresResource,
    webhook_sender: WebhookSenderResource,
) -> dg.Output[dict[str, int]]:
    """Claim a batch of due queue rows and deliver them."""
    return _deliver(context, postgres, webhook_sender, config.limit, config.min_age_s)


@dg.job(tags={"alert_delivery/driver": "dagster"})
def deliver_pending() -> None:
    deliver_due_rows()


class SweepConfig(dg.Config):
    limit: int = 10_000


@dg.op(out=dg.Out(dict))
def sweep_retries(
    context: dg.OpExecutionContext,
    config: SweepConfig,
    postgres: PostgresResource,
    webhook_sender: WebhookSenderResource,
) -> dg.Output[dict[str, int]]:
    """Due retries and rows whose lease expired (a crashed worker or run)."""
    return _deliver(context, postgres, webhook_sender, config.limit, 0.0)


@dg.job
def retry_sweep() -> None:
    sweep_retries()


retry_sweep_schedule = dg.ScheduleDefinition(
    name="retry_sweep_every_5_minutes",
    job=retry_sweep,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


class ReplayConfig(dg.Config):
    """The same choices as `alert-delivery dlq replay`: ids, a webhook, a time range."""

    ids: list[int] | None = None
    webhook: str = ""
    since: str = ""
    until: str = ""


def _time(text: str, where: str) -> datetime | None:
    return parse_time(text, where=where, require_zone=True) if text else None


@dg.op
def replay_dead_letters(
    context: dg.OpExecutionContext, config: ReplayConfig, postgres: PostgresResource
) -> int:
    selection = Selection(
        ids=config.ids or None,
        webhook=config.webhook or None,
        since=_time(config.since, "since"),
        until=_time(config.until, "until"),
    )
    with postgres.guarded_url() as url:
        count = replay(url, selection, actor="dagster", run_id=context.run_id)
    context.add_output_metadata({"replayed": count})
    return count


@dg.job
def replay_dead() -> None:
    replay_dead_letters()


# While a worker's heartbeat is fresh the sensor leaves rows younger than this to the worker.
SENSOR_GRACE_S = 10.0


@dg.sensor(
    job=deliver_pending,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def delivery_queue_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult:
    """Launch deliver_pending for new queue rows and for older due rows no run has claimed."""
    cursor = int(context.cursor or 0)
    with postgres.guarded_url() as url:
        plans, new_cursor = plan_delivery_runs(url, cursor=cursor, grace_s=SENSOR_GRACE_S)
    requests = [
        dg.RunRequest(
            run_key=plan.run_key,
            run_config={
                "ops": {
                    "deliver_due_rows": {
                        "config": {"limit": max(plan.rows, 500), "min_age_s": plan.min_age_s}
                    }
                }
            },
            tags={
                "alert_delivery/first_id": str(plan.first_id),
                "alert_delivery/last_id": str(plan.last_id),
                "alert_delivery/rows": str(plan.rows),
            },
        )
        for plan in plans
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(new_cursor))


defs = dg.Definitions(
    jobs=[deliver_pending, retry_sweep, replay_dead],
    schedules=[retry_sweep_schedule],
    sensors=[delivery_queue_sensor],
    resources={"webhook_sender": WebhookSenderResource()},
)
