"""Detection: ingestion, baselines, anomalies, rollups, correlations and bottlenecks.

Plain Python and SQL, no Dagster. The calls a driver (the demo, a test, an asset) makes, in order,
are documented in :mod:`alert_delivery.detection.synthetic`.
"""
