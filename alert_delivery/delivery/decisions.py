"""Per-row decisions: what each claimed row becomes, from its claim to its outcome.

Before any attempt a row may be set aside (webhook disabled, not renderable: dead; webhook paused:
deferred with the reason) or held over its webhook's permit (deferred, never dropped). An HTTP
row is prepared (target decrypted, SSRF-checked, body serialised, signed now); the attempt's
result is decided (``outcome.decide``) and handed to the recorder with the body to store.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from alert_delivery.config import Settings
from alert_delivery.delivery import metrics
from alert_delivery.delivery.batch import Batch
from alert_delivery.delivery.body import body_bytes
from alert_delivery.delivery.breaker import Breakers
from alert_delivery.delivery.outcome import Attempt, Verdict, decide
from alert_delivery.delivery.registry import HTTP_KINDS, decrypted_target
from alert_delivery.delivery.retry import RetryPolicy
from alert_delivery.delivery.secrets import Vault
from alert_delivery.delivery.signing import webhook_headers
from alert_delivery.delivery.smtp import send_email
from alert_delivery.delivery.ssrf import check_url, needs_dns
from alert_delivery.delivery.store import Claimed, Outcome
from alert_delivery.errors import AlertDeliveryError

PAUSED_RECHECK_S = 60.0
"""How long rows of a paused webhook wait before they are looked at again."""

Request = tuple[str, bytes, dict[str, str]]
"""URL, body and headers of one HTTP attempt."""
Record = Callable[[Claimed, Batch, Outcome, Attempt | None], None]


def serialise(row: Claimed, secrets: list[str]) -> bytes:
    """The exact bytes signed and sent for ``row`` (PagerDuty's routing key joins only here)."""
    return body_bytes(row.kind, row.body, row.payload, secrets)


class Decisions:
    """The engine's per-row logic; ``record`` receives every outcome (the recorder's ``add``)."""

    def __init__(
        self,
        vault: Vault,
        settings: Settings,
        breakers: Breakers,
        record: Record,
        *,
        retry_after_cap_s: float,
        smtp_timeout_s: float,
    ) -> None:
        self.vault = vault
        self.settings = settings
        self.breakers = breakers
        self.record = record
        self.retry_after_cap_s = retry_after_cap_s
        self.smtp_timeout_s = smtp_timeout_s
        self.soonest: float | None = None
        """Monotonic time the earliest row deferred or throttled here is due again."""
        self._checked: set[str] = set()
        self._targets: dict[tuple[str | None, str | None], tuple[str | None, list[str]]] = {}
        self._policies: dict[tuple[int, ...] | None, RetryPolicy] = {}

    def set_aside(self, rows: Sequence[Claimed], batch: Batch) -> list[Claimed]:
        """Rows of a disabled webhook and rows that cannot be rendered are dead-lettered; rows of
        a paused webhook wait, with the reason on the row."""
        keep = []
        for row in rows:
            if row.active and row.error is None:
                keep.append(row)
            elif row.paused is not None and row.error is None:
                self.defer(row, batch, PAUSED_RECHECK_S, row.paused)
            else:
                self.dead(row, batch, row.error or "webhook disabled")
        return keep

    def permit(self, rows: list[Claimed], batch: Batch) -> list[Claimed]:
        """Apply the claim's breaker/bucket permits: rows over them are deferred, never dropped."""
        by_webhook: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            by_webhook[row.webhook_id].append(row)
        granted: list[Claimed] = []
        for group in by_webhook.values():
            allowed, wait, rate = group[0].granted, group[0].wait_s, group[0].rate_limit_per_s
            granted.extend(group[:allowed])
            for i, row in enumerate(group[allowed:]):
                self.defer(row, batch, wait + i / rate)
        granted.sort(key=lambda r: r.delivery_id)
        return granted

    def prepare(self, row: Claimed) -> Request | Attempt:
        """URL, body and signed headers of an HTTP row, or the Attempt when it cannot be sent."""
        try:
            url, secrets = self._target(row)
            if row.kind not in HTTP_KINDS or not url:
                return Attempt(Verdict.PERMANENT, error=f"cannot deliver kind {row.kind}")
            self._check(url)
            body = serialise(row, secrets)
        except AlertDeliveryError as exc:
            return Attempt(Verdict.PERMANENT, error=str(exc))
        # Signed at send time: a row that waited in the lanes' queue still carries a fresh
        # timestamp, well inside a receiver's tolerance.
        return url, body, webhook_headers(row.message_id, body, secrets)

    async def email(self, row: Claimed) -> Attempt:
        try:
            url, _ = self._target(row)
        except AlertDeliveryError as exc:
            return Attempt(Verdict.PERMANENT, error=str(exc))
        return await asyncio.to_thread(
            send_email,
            url or "",
            row.config,
            row.payload,
            row.message_id,
            allowed=self.settings.allowed_targets,
            timeout_s=self.smtp_timeout_s,
        )

    def done(self, row: Claimed, batch: Batch, attempt: Attempt) -> None:
        """An attempt finished: the breakers learn it, and its outcome is decided and recorded."""
        self.breakers.finished(row.webhook_id, attempt, row.probe)
        if row.kind != "inbox":
            metrics.observe_attempt(row.kind, attempt.verdict.value, attempt.latency_ms)
        self._outcome(row, batch, decide(row, attempt, self._policy(row.retry_schedule_s)), attempt)

    def defer(self, row: Claimed, batch: Batch, delay_s: float, error: str | None = None) -> None:
        outcome = Outcome(
            row.delivery_id, row.webhook_id, "pending", delay_s, "deferred", False, error=error
        )
        self._outcome(row, batch, outcome, None)

    def dead(self, row: Claimed, batch: Batch, error: str) -> None:
        outcome = Outcome(
            row.delivery_id, row.webhook_id, "dead", 0.0, "dead_lettered", False, error=error
        )
        self._outcome(row, batch, outcome, None)

    def release(self, row: Claimed, batch: Batch) -> None:
        """Not tried (the process is stopping): the row is due again at once."""
        outcome = Outcome(row.delivery_id, row.webhook_id, "pending", 0.0, "released", False)
        self._outcome(row, batch, outcome, None)

    def _outcome(
        self, row: Claimed, batch: Batch, outcome: Outcome, attempt: Attempt | None
    ) -> None:
        if row.rendered and not (outcome.status == "pending" and not outcome.counted):
            outcome.body = row.body  # sent (or dead): the bytes every later attempt sends
        if outcome.status == "pending" and outcome.log_event in ("deferred", "throttled"):
            due = time.monotonic() + outcome.delay_s
            if self.soonest is None or due < self.soonest:
                self.soonest = due
        self.record(row, batch, outcome, attempt)

    def _check(self, url: str) -> None:
        """The SSRF check before every attempt; a verdict that needed no DNS is remembered,
        because re-parsing the same string gives the same answer (DNS is re-checked anyway,
        at connect time, by the sender)."""
        if url in self._checked:
            return
        check_url(url, self.settings.allowed_targets)
        if not needs_dns(url):
            self._checked.add(url)

    def _target(self, row: Claimed) -> tuple[str | None, list[str]]:
        key = (row.url_token, row.secret_token)
        found = self._targets.get(key)
        if found is None:
            found = decrypted_target(self.vault, row.url_token, row.secret_token)
            self._targets[key] = found
        return found

    def _policy(self, schedule: list[int] | None) -> RetryPolicy:
        key = tuple(schedule) if schedule else None
        policy = self._policies.get(key)
        if policy is None:
            policy = RetryPolicy.for_webhook(schedule, retry_after_cap_s=self.retry_after_cap_s)
            self._policies[key] = policy
        return policy
