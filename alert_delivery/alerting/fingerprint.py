"""Keys derived from an alert's fingerprint (the hash of its label set, see ``labels``)."""


def pagerduty_dedup_key(fingerprint_: str) -> str:
    """PagerDuty's ``dedup_key`` (<= 255 characters), stable for the life of the alert."""
    return f"alert-delivery/{fingerprint_}"
