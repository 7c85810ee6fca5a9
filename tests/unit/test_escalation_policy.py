"""The escalation policy: defaults of the design, and out-of-range values named."""

import pytest

from alert_delivery.delivery.retry import DEFAULT_SCHEDULE_S
from alert_delivery.errors import InvalidInput
from alert_delivery.escalation import EscalationAction, EscalationPolicy


def test_defaults() -> None:
    policy = EscalationPolicy()
    assert (policy.interval_s, policy.max_level, policy.stale_after_s) == (600, 5, 1800)
    assert policy.dead_after_attempts == len(DEFAULT_SCHEDULE_S) == 8


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("interval_s", 0, "interval_s: must be >= 1, got 0"),
        ("stale_after_s", -5, "stale_after_s: must be >= 1, got -5"),
        ("dead_after_attempts", 0, "dead_after_attempts: must be >= 1, got 0"),
        ("max_level", 0, "max_level: must be between 1 and 5, got 0"),
        ("max_level", 6, "max_level: must be between 1 and 5, got 6"),
    ],
)
def test_out_of_range_values_are_named(field: str, value: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        EscalationPolicy(**{field: value})


def test_an_action_knows_whether_it_sent() -> None:
    sent = EscalationAction(1, 2, None, "unacknowledged", "sent, stopped: max_level", 5, 1)
    stopped = EscalationAction(1, 2, None, "unacknowledged", "stopped: acknowledged", 1, 0)
    assert sent.sent and not stopped.sent
