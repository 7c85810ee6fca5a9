"""The Grafana dashboard in ops/ matches what the exporter and the workers serve, and uses
counters the Prometheus way; report formatting helpers."""

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from alert_delivery.delivery import metrics
from alert_delivery.exporter import exported_families
from alert_delivery.operations.reports import bar, pct

DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "alert-delivery.json"
RANGE_FUNCTIONS = re.compile(r"\b(rate|irate|increase|delta|idelta|deriv)\s*\(\s*([a-z_:]+)")


def served_families() -> dict[str, str]:
    """Family name -> type for everything scraped: the exporter's and the workers' engine metrics
    (the process and platform collectors are left out: the dashboard does not chart them)."""
    families = exported_families()
    for collector in metrics.FAMILIES:
        for family in collector.describe():
            families[family.name] = family.type
    return families


def family_of(sample: str, families: dict[str, str]) -> str | None:
    """The family a sample name belongs to, as the text exposition names samples."""
    for name, kind in families.items():
        if kind == "gauge" and sample == name:
            return name
        if kind == "counter" and sample == name + "_total":
            return name
        if kind == "histogram" and sample in (name + "_bucket", name + "_count", name + "_sum"):
            return name
    return None


def exprs() -> list[str]:
    found = []
    for panel in load()["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            found.append(target["expr"])
    return found


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_dashboard_is_a_grafana_model() -> None:
    dashboard = load()
    assert (dashboard["uid"], dashboard["title"]) == ("alert-delivery", "alert-delivery")
    assert isinstance(dashboard["schemaVersion"], int)
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    boxes = [p["gridPos"] for p in dashboard["panels"]]
    assert all(b["x"] >= 0 and b["x"] + b["w"] <= 24 for b in boxes)
    for a, b in combinations(boxes, 2):
        overlap_x = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
        overlap_y = a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
        assert not (overlap_x and overlap_y), (a, b)


def test_dashboard_queries_only_served_metrics_and_covers_every_family() -> None:
    families = served_families()
    used = set()
    for expr in exprs():
        names = re.findall(r"\balert_delivery_[a-z_]+", expr)
        assert names, expr
        for name in names:
            family = family_of(name, families)
            assert family is not None, f"{name} is not served (in {expr})"
            used.add(family)
    assert used == set(families), set(families) - used


def test_range_functions_apply_to_counters_only() -> None:
    """rate()/increase() on counters and histogram series; never delta() on a gauge of rows,
    which goes negative (or wrong) as soon as rows are archived or deleted."""
    families = served_families()
    applied = 0
    for expr in exprs():
        for function, name in RANGE_FUNCTIONS.findall(expr):
            family = family_of(name, families)
            assert family is not None, expr
            assert function in ("rate", "irate", "increase"), f"{function}() in {expr}"
            assert families[family] in ("counter", "histogram"), f"{function}({name}): a gauge"
            applied += 1
    assert applied >= 10


def test_the_delivery_counters_are_charted_with_rate_or_increase() -> None:
    text = "\n".join(exprs())
    for counter in (
        "alert_delivery_delivery_events_total",
        "alert_delivery_attempts_total",
        "alert_delivery_retries_total",
        "alert_delivery_dead_lettered_total",
        "alert_delivery_suppressions_total",
        "alert_delivery_engine_deliveries_total",
    ):
        assert re.search(rf"\b(rate|increase)\({counter}\b", text), counter


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(None, ""), (0.0, "··········"), (1.0, "██████████"), (0.75, "███████▌··"), (1.5, "█" * 10)],
)
def test_bar(fraction: float | None, text: str) -> None:
    assert bar(fraction) == text


def test_pct() -> None:
    assert (pct(None), pct(0.6), pct(1 / 3)) == ("-", "60.0%", "33.3%")
