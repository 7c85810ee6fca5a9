"""Run tags every job carries: ``dagster.yaml``'s run queue limits concurrency by ``KIND_TAG``."""

KIND_TAG = "alert_delivery/kind"

DETECTION = {KIND_TAG: "detection"}
"""Baselines and hourly detection (with alerts): limit 1, they share the detection tables."""
DELIVERY = {KIND_TAG: "delivery"}
"""deliver_pending, retry_sweep, replay_dead: limit 2, so a burst of ticks cannot take both
cores from detection."""
ESCALATION = {KIND_TAG: "escalation"}
REPORT = {KIND_TAG: "report"}
MAINTENANCE = {KIND_TAG: "maintenance"}
"""log_partitions: limit 1 (creating and dropping delivery_log partitions)."""
