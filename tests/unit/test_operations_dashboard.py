"""The Grafana dashboard in ops/ matches what the exporter serves; report formatting helpers."""

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from alert_delivery.exporter import GAUGES, PREFIX
from alert_delivery.operations.reports import bar, pct

DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "alert-delivery.json"
HISTOGRAM = PREFIX + "attempt_latency_seconds"
FAMILIES = {PREFIX + name for name in GAUGES} | {
    HISTOGRAM,
    PREFIX + "database_up",
    PREFIX + "scrape_duration_seconds",
}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def family_of(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum"):
        if name.startswith(HISTOGRAM) and name == HISTOGRAM + suffix:
            return HISTOGRAM
    return name


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
    used = set()
    for panel in load()["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            names = re.findall(r"\balert_delivery_[a-z_]+", target["expr"])
            assert names, target["expr"]
            used |= {family_of(n) for n in names}
    assert used <= FAMILIES, used - FAMILIES
    assert used == FAMILIES, FAMILIES - used


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(None, ""), (0.0, "··········"), (1.0, "██████████"), (0.75, "███████▌··"), (1.5, "█" * 10)],
)
def test_bar(fraction: float | None, text: str) -> None:
    assert bar(fraction) == text


def test_pct() -> None:
    assert (pct(None), pct(0.6), pct(1 / 3)) == ("-", "60.0%", "33.3%")
