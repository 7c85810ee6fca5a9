"""Alerts about the pipeline itself (meta-monitoring), raised when a Dagster run fails.

They go through alerting's producer API like any other alert, so routing, silences, dedup and
enqueueing apply: a job that keeps failing stays one open alert whose ``occurrences`` count up.
"""

from dataclasses import dataclass

import psycopg

from alert_delivery.alerting import raise_alert

_MAX_DESCRIPTION = 1000
SOURCE = "pipeline"
ALERT_TYPE = "PIPELINE_FAILURE"


@dataclass(frozen=True)
class PipelineAlert:
    alert_id: int
    outcome: str
    """What alerting did with it: notified, deduplicated, silenced, unrouted, ..."""


def raise_pipeline_alert(
    conn: psycopg.Connection,
    *,
    job_name: str,
    run_id: str,
    error: str,
    severity: str = "CRITICAL",
) -> PipelineAlert:
    """Raise (or deduplicate into) the open alert for failed runs of ``job_name``."""
    error_text = " ".join(error.split())[:_MAX_DESCRIPTION] or "run failed without an error message"
    result = raise_alert(
        conn,
        source=SOURCE,
        operation_type=f"dagster:{job_name}",
        alert_type=ALERT_TYPE,
        severity=severity,
        title=f"Dagster run of {job_name} failed",
        description=error_text,
        details={"job_name": job_name, "run_id": run_id, "error": error_text},
    )
    assert result.alert_id is not None  # no end time given: the alert always exists
    return PipelineAlert(alert_id=result.alert_id, outcome=result.outcome)
