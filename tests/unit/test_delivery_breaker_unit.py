"""The per-process breaker and throttle (alert_delivery.delivery.breaker), on a fake clock."""

from alert_delivery.delivery.breaker import MIN_DEFER_S, Breakers
from alert_delivery.delivery.outcome import Attempt, Verdict

FAIL = Attempt(Verdict.RETRY, status=503, error="HTTP 503")
OK = Attempt(Verdict.DELIVERED, status=200)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_fifth_failure_opens_and_only_the_leased_probe_goes() -> None:
    clock = Clock()
    b = Breakers(5, 60.0, 3600.0, clock)
    for _ in range(4):
        b.finished(1, FAIL, probe=False)
        assert b.admit(1, probe=False) is None
    b.finished(1, FAIL, probe=False)
    hold = b.admit(1, probe=False)
    assert hold is not None and not hold.gone and hold.delay_s == 60.0
    assert b.admit(2, probe=False) is None, "other webhooks are not affected"
    clock.now += 61
    assert b.admit(1, probe=False) is not None, "no probe of its own: the claim leases it"
    assert b.admit(1, probe=True) is None
    assert b.admit(1, probe=True) is not None, "exactly one probe"
    b.finished(1, OK, probe=True)
    assert b.admit(1, probe=False) is None


def test_a_failed_probe_reopens_for_a_cooldown() -> None:
    clock = Clock()
    b = Breakers(5, 60.0, 3600.0, clock)
    for _ in range(5):
        b.finished(1, FAIL, probe=False)
    clock.now += 61
    assert b.admit(1, probe=True) is None
    b.finished(1, FAIL, probe=True)
    hold = b.admit(1, probe=False)
    assert hold is not None and hold.delay_s == 60.0


def test_429_holds_until_retry_after_capped_and_counts_for_nothing_else() -> None:
    clock = Clock()
    b = Breakers(5, 60.0, 30.0, clock)
    for _ in range(10):
        b.finished(1, Attempt(Verdict.THROTTLED, status=429, retry_after_s=20.0), probe=False)
    hold = b.admit(1, probe=False)
    assert hold is not None and hold.delay_s == 20.0
    clock.now += 20
    assert b.admit(1, probe=False) is None, "ten 429s opened no breaker"
    b.finished(1, Attempt(Verdict.THROTTLED, status=429, retry_after_s=1e9), probe=False)
    hold = b.admit(1, probe=False)
    assert hold is not None and hold.delay_s == 30.0, "capped"


def test_410_sets_every_later_row_aside_and_permanent_errors_say_nothing() -> None:
    b = Breakers(5, 60.0, 3600.0, Clock())
    for _ in range(10):
        b.finished(1, Attempt(Verdict.PERMANENT, status=404), probe=False)
    assert b.admit(1, probe=False) is None
    b.finished(1, Attempt(Verdict.GONE, status=410, error="HTTP 410 Gone"), probe=False)
    hold = b.admit(1, probe=False)
    assert hold is not None and hold.gone and hold.reason == "HTTP 410 Gone"


def test_what_other_processes_recorded_opens_and_closes_it() -> None:
    clock = Clock()
    b = Breakers(5, 60.0, 3600.0, clock)
    b.shared(1, "open", 7, 42.0)
    hold = b.admit(1, probe=False)
    assert hold is not None and hold.delay_s == 42.0
    clock.now += 43
    b.shared(1, "closed", 0, 0.0)  # another process's probe closed it
    assert b.admit(1, probe=False) is None
    b.shared(2, "closed", 3, 0.0)
    b.finished(2, FAIL, probe=False)
    b.finished(2, FAIL, probe=False)
    hold = b.admit(2, probe=False)
    assert hold is not None and hold.delay_s >= MIN_DEFER_S, "3 shared + 2 own = 5"
