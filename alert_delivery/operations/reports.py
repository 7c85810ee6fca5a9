"""Hourly report computations: delivery outcomes and response SLA for one time window.

Returns plain rows plus markdown; the Dagster assets turn them into metadata.
"""

from dataclasses import dataclass
from datetime import datetime

import psycopg

from alert_delivery.db import query

_BARS = " ▏▎▍▌▋▊▉"  # left-aligned eighths, so partial cells continue the bar


@dataclass(frozen=True)
class WebhookDeliveryRow:
    channel: str | None
    webhook: str
    delivered: int
    failed: int
    retries: int
    dead_lettered: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def success_rate(self) -> float | None:
        attempts = self.delivered + self.failed
        return self.delivered / attempts if attempts else None


@dataclass(frozen=True)
class ChannelDeliveryRow:
    channel: str
    delivered: int
    failed: int
    retries: int
    dead_lettered: int

    @property
    def success_rate(self) -> float | None:
        attempts = self.delivered + self.failed
        return self.delivered / attempts if attempts else None


@dataclass(frozen=True)
class LatencySummary:
    samples: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class DeliveryReport:
    start: datetime
    end: datetime
    webhooks: list[WebhookDeliveryRow]
    channels: list[ChannelDeliveryRow]
    latency: LatencySummary

    @property
    def delivered(self) -> int:
        return sum(r.delivered for r in self.webhooks)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.webhooks)

    @property
    def retries(self) -> int:
        return sum(r.retries for r in self.webhooks)

    @property
    def dead_lettered(self) -> int:
        return sum(r.dead_lettered for r in self.webhooks)

    @property
    def success_rate(self) -> float | None:
        attempts = self.delivered + self.failed
        return self.delivered / attempts if attempts else None


@dataclass(frozen=True)
class SlaRow:
    severity: str
    target_s: int | None
    alerts: int
    acknowledged: int
    met: int
    breached: int
    open: int
    p50_time_to_ack_s: float | None
    max_time_to_ack_s: float | None

    @property
    def compliance(self) -> float | None:
        judged = self.met + self.breached
        return self.met / judged if judged else None


def delivery_report(conn: psycopg.Connection, start: datetime, end: datetime) -> DeliveryReport:
    window = {"start": start, "end": end}
    webhooks = [
        WebhookDeliveryRow(*row)
        for row in conn.execute(query("operations", "report_delivery_by_webhook"), window)
    ]
    by_channel: dict[str, list[WebhookDeliveryRow]] = {}
    for row in webhooks:
        by_channel.setdefault(row.channel or "(deleted webhook)", []).append(row)
    channels = [
        ChannelDeliveryRow(
            channel=name,
            delivered=sum(r.delivered for r in rows),
            failed=sum(r.failed for r in rows),
            retries=sum(r.retries for r in rows),
            dead_lettered=sum(r.dead_lettered for r in rows),
        )
        for name, rows in by_channel.items()
    ]
    latency_row = conn.execute(query("operations", "report_delivery_latency"), window).fetchone()
    latency = (
        LatencySummary(*latency_row) if latency_row else LatencySummary(0, None, None, None, None)
    )
    return DeliveryReport(start, end, webhooks, channels, latency)


def sla_report(conn: psycopg.Connection, start: datetime, end: datetime) -> list[SlaRow]:
    rows = conn.execute(query("operations", "report_response_sla"), {"start": start, "end": end})
    return [SlaRow(*row) for row in rows]


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def bar(fraction: float | None, width: int = 10) -> str:
    """A text bar for a fraction in [0, 1]: a plot that renders in Dagster's markdown metadata."""
    if fraction is None:
        return ""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_BARS[part] if part else "")).ljust(width, "·")


def delivery_markdown(report: DeliveryReport) -> str:
    lines = [
        f"### Deliveries {report.start:%Y-%m-%d %H:%M} to {report.end:%H:%M} UTC",
        "",
        f"Success rate **{pct(report.success_rate)}** ({report.delivered} delivered, "
        f"{report.failed} failed attempts, {report.retries} retries, "
        f"{report.dead_lettered} dead-lettered). Latency p50 {ms(report.latency.p50_ms)} ms, "
        f"p95 {ms(report.latency.p95_ms)} ms, p99 {ms(report.latency.p99_ms)} ms.",
        "",
        "| channel | webhook | success | | delivered | failed | retries | dead | p50 ms | p95 ms |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.webhooks:
        lines.append(
            f"| {r.channel or '-'} | {r.webhook} | {pct(r.success_rate)} | `{bar(r.success_rate)}`"
            f" | {r.delivered} | {r.failed} | {r.retries} | {r.dead_lettered}"
            f" | {ms(r.p50_ms)} | {ms(r.p95_ms)} |"
        )
    if not report.webhooks:
        lines.append("| - | no delivery activity in this hour | | | | | | | | |")
    return "\n".join(lines)


def sla_markdown(rows: list[SlaRow], start: datetime, end: datetime) -> str:
    lines = [
        f"### Response SLA for alerts raised {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC",
        "",
        "| severity | target | alerts | acknowledged | met | breached | open | compliance | |"
        " p50 ack s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        target = f"{r.target_s // 60} min" if r.target_s else "none"
        lines.append(
            f"| {r.severity} | {target} | {r.alerts} | {r.acknowledged} | {r.met} | {r.breached}"
            f" | {r.open} | {pct(r.compliance)} | `{bar(r.compliance)}` |"
            f" {ms(r.p50_time_to_ack_s)} |"
        )
    return "\n".join(lines)
