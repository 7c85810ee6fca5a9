"""Alerting: alert lifecycle, dedup, silences, inhibition, routing, grouping and enqueueing.

The pipeline is PL/pgSQL (sql/migrations/0003_alerting.sql) so SQL producers and Python share it;
this package is the Python face of it. No Dagster here.
"""

from alert_delivery.alerting.from_detection import PartitionAlerts, alerts_from_partition
from alert_delivery.alerting.lifecycle import acknowledge, list_alerts, release_held, resolve
from alert_delivery.alerting.producer import RaiseResult, raise_alert, raise_alerts
from alert_delivery.alerting.routing import add_rule, list_rules, remove_rule
from alert_delivery.alerting.silences import add_silence, expire_silence, list_silences

__all__ = [
    "PartitionAlerts",
    "RaiseResult",
    "acknowledge",
    "add_rule",
    "add_silence",
    "alerts_from_partition",
    "expire_silence",
    "list_alerts",
    "list_rules",
    "list_silences",
    "raise_alert",
    "raise_alerts",
    "release_held",
    "remove_rule",
    "resolve",
]
