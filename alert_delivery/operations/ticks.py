"""The last tick of every sensor and schedule, read from the Dagster instance's storage.

The one module under ``operations/`` that touches Dagster, and only its instance storage (no
definitions are loaded): `alert-delivery status` must stay fast and work while code is broken.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class InstigatorTick:
    name: str
    kind: str
    """``sensor`` or ``schedule``."""
    running: bool
    last_tick_at: datetime | None
    last_tick_status: str | None
    detail: str | None
    """Skip reason or the first line of the error of the last tick."""


def instance_configured(dagster_home: Path) -> bool:
    return (dagster_home / "dagster.yaml").is_file()


def read_ticks(dagster_home: Path) -> list[InstigatorTick]:
    """Every sensor and schedule the instance knows, with its latest tick (if any)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        result = []
        for state in instance.all_instigator_state():
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
            tick = ticks[0] if ticks else None
            detail = None
            if tick is not None:
                if tick.error is not None:
                    detail = (tick.error.message.strip().splitlines() or [""])[0]
                else:
                    detail = tick.skip_reason
            result.append(
                InstigatorTick(
                    name=state.instigator_name,
                    kind=state.instigator_type.value.lower(),
                    running=state.is_running,
                    last_tick_at=(datetime.fromtimestamp(tick.timestamp, tz=UTC) if tick else None),
                    last_tick_status=tick.status.value.lower() if tick else None,
                    detail=detail,
                )
            )
    return sorted(result, key=lambda t: (t.kind, t.name))


def with_declared(
    ticks: list[InstigatorTick], declared: list[tuple[str, str, bool]]
) -> list[InstigatorTick]:
    """Add the code location's sensors and schedules (name, kind, running by default) that the
    instance has no state for yet: a default-on sensor has none until the daemon first ticks it."""
    known = {(t.kind, t.name) for t in ticks}
    missing = [
        InstigatorTick(name, kind, running, None, None, None)
        for name, kind, running in declared
        if (kind, name) not in known
    ]
    return sorted(ticks + missing, key=lambda t: (t.kind, t.name))


def format_ticks(ticks: list[InstigatorTick]) -> list[str]:
    lines = [f"Sensors and schedules: {len(ticks) or 'none recorded'}"]
    for t in ticks:
        state = "running" if t.running else "stopped"
        if t.last_tick_at is None:
            last = "no ticks yet"
        else:
            last = f"last tick {t.last_tick_at:%Y-%m-%d %H:%M:%S}Z {t.last_tick_status}"
            if t.detail:
                last += f" ({' '.join(t.detail.split())[:80]})"
        lines.append(f"  {t.kind:<8} {t.name} [{state}] {last}")
    return lines
