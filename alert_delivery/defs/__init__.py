"""Dagster definitions, one module per domain; ``alert_delivery.definitions`` merges them."""
