"""Partitions shared by detection and alerting assets (one object, so dependencies line up)."""

import dagster as dg

HOURLY = dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00", timezone="UTC")
DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")
