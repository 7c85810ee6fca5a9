"""Operations: what `alert-delivery status` shows, report computations, pipeline alerts.

Plain Python and SQL; the Dagster wrappers live in ``alert_delivery/defs/operations.py``.
"""
