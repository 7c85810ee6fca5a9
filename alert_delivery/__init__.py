"""alert-delivery: performance anomaly detection and reliable alert delivery on PostgreSQL."""
