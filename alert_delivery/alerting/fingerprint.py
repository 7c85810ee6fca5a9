"""Fingerprint and content hash, the keys of the two dedup layers.

The pipeline computes both in SQL (``alert_fingerprint`` / ``alert_content_hash`` in
0003_alerting.sql); these mirror them byte for byte (a test holds them equal) so Python can
predict which alert an event will deduplicate into, e.g. to auto-resolve detection alerts.
"""

import hashlib

_SEP = "\x1f"  # unit separator: cannot appear in the fields, so "a|b"+"c" never equals "a"+"b|c"


def fingerprint(source: str, operation_type: str, alert_type: str, severity: str) -> str:
    """Same source, operation, alert type and severity -> same fingerprint (dedup layer 1)."""
    text = _SEP.join((source, operation_type, alert_type, severity))
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(fingerprint_: str, title: str, description: str) -> str:
    """Identical content within 24 h is suppressed (dedup layer 2)."""
    return hashlib.sha256(_SEP.join((fingerprint_, title, description)).encode()).hexdigest()


def pagerduty_dedup_key(fingerprint_: str) -> str:
    """PagerDuty's ``dedup_key`` (<= 255 characters), stable for the life of the alert."""
    return f"alert-delivery/{fingerprint_}"
