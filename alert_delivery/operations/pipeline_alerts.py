"""Alerts about the pipeline itself (meta-monitoring), raised when a Dagster run fails.

Inserted straight into ``alerts`` with source ``pipeline``.
TODO(integration): switch to ``alert_delivery.alerting.raise_alert`` once it exists, so pipeline
alerts are routed, silenced and enqueued like every other alert.
"""

import hashlib
import json
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from alert_delivery.db import query

_MAX_DESCRIPTION = 1000


@dataclass(frozen=True)
class PipelineAlert:
    alert_id: int
    occurrences: int


def raise_pipeline_alert(
    conn: psycopg.Connection,
    *,
    job_name: str,
    run_id: str,
    error: str,
    severity: str = "CRITICAL",
) -> PipelineAlert:
    """One open alert per failing job; a repeat failure bumps ``occurrences`` instead."""
    error_text = " ".join(error.split())[:_MAX_DESCRIPTION] or "run failed without an error message"
    payload = {"job_name": job_name, "run_id": run_id, "error": error_text}
    content_hash = hashlib.sha256(
        json.dumps({"job_name": job_name, "error": error_text}, sort_keys=True).encode()
    ).hexdigest()
    row = conn.execute(
        query("operations", "raise_pipeline_alert"),
        {
            "fingerprint": f"pipeline:{job_name}",
            "content_hash": content_hash,
            "operation_type": f"dagster:{job_name}",
            "severity": severity,
            "title": f"Dagster run of {job_name} failed",
            "description": error_text,
            "payload": Jsonb(payload),
        },
    ).fetchone()
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE ... RETURNING always returns a row
    return PipelineAlert(alert_id=int(row[0]), occurrences=int(row[1]))
