"""Detection thresholds as frozen data: defaults here, overridden by run config or callers."""

import math
from dataclasses import dataclass, field

from alert_delivery.errors import InvalidInput


@dataclass(frozen=True)
class BaselineSettings:
    window_days: int = 7
    min_samples: int = 10
    time_budget_s: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.window_days <= 365:
            raise InvalidInput(
                f"must be between 1 and 365 days, got {self.window_days}", where="window_days"
            )
        if self.min_samples < 10:
            raise InvalidInput(f"must be at least 10, got {self.min_samples}", where="min_samples")
        if self.time_budget_s <= 0:
            raise InvalidInput(f"must be positive, got {self.time_budget_s}", where="time_budget_s")


@dataclass(frozen=True)
class AnomalySettings:
    """A partition is STATISTICAL when the z-score of its mean (standard error of the baseline)
    reaches ``z_threshold`` and the mean moved at least ``min_mean_ratio``; P99_DEGRADATION when
    its p99 reaches ``p99_ratio_threshold`` times the baseline p99; COMBINED when both.

    Severity comes from the size of the slowdown, ``max(mean ratio, p99 ratio)``: CRITICAL at
    ``critical_ratio``, WARNING at ``warning_ratio``, INFO below.
    """

    z_threshold: float = 3.0
    min_mean_ratio: float = 1.05
    p99_ratio_threshold: float = 1.5
    warning_ratio: float = 1.5
    critical_ratio: float = 2.0
    min_samples: int = 5
    baseline_window_days: int = 7

    def __post_init__(self) -> None:
        if self.z_threshold <= 0 or self.p99_ratio_threshold <= 1:
            raise InvalidInput("z_threshold must be > 0 and p99_ratio_threshold > 1")
        if not 1 <= self.warning_ratio <= self.critical_ratio:
            raise InvalidInput("severity ratios must satisfy 1 <= warning_ratio <= critical_ratio")
        if not 1 <= self.baseline_window_days <= 365:
            raise InvalidInput(
                f"must be between 1 and 365 days, got {self.baseline_window_days}",
                where="baseline_window_days",
            )


@dataclass(frozen=True)
class CorrelationSettings:
    """A pair of operations is strong when its Pearson r reaches ``strong_r``; a strong pair whose
    operations both degraded in the partition gets a bottleneck type (and an alert).

    ``strong_r`` is the ``correlations`` asset's run config (Dagster launchpad or schedule).
    """

    lookback_hours: int = 24
    min_samples: int = 6
    strong_r: float = 0.75
    families: tuple[tuple[str, str], ...] = field(default=())
    """``(glob pattern, bottleneck type)`` pairs; empty means ``bottlenecks.DEFAULT_FAMILIES``."""

    def __post_init__(self) -> None:
        if not 2 <= self.lookback_hours <= 24 * 365:
            raise InvalidInput(
                f"must be between 2 and 8760, got {self.lookback_hours}", where="lookback_hours"
            )
        if self.min_samples < 4:
            raise InvalidInput(f"must be at least 4, got {self.min_samples}", where="min_samples")
        if not (math.isfinite(self.strong_r) and 0 < self.strong_r <= 1):
            raise InvalidInput(
                f"must be a finite number with 0 < r <= 1, got {self.strong_r!r}",
                where="strong_r",
            )
