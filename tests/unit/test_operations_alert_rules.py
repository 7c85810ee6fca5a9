"""ops/prometheus: the alerting rules are valid (`promtool check rules`), do what they say on input
series (`promtool test rules`), reference only metrics that are served, and the Prometheus config
that loads them is valid (`promtool check config`)."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_operations_dashboard import family_of, served_families

OPS = Path(__file__).resolve().parents[2] / "ops" / "prometheus"
RULES = OPS / "alert-rules.yml"
RULES_TEST = OPS / "alert-rules.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found on PATH (Debian/Ubuntu: apt-get install prometheus)",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=OPS, capture_output=True, text=True, timeout=60, check=False
    )


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


@needs_promtool
def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


@needs_promtool
def test_promtool_test_rules() -> None:
    done = promtool("test", "rules", RULES_TEST.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_prometheus_config_loads_the_rules() -> None:
    config = yaml.safe_load((OPS / "prometheus.yml").read_text())
    assert config["rule_files"] == [RULES.name]
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_every_rule_is_tested_and_names_served_metrics() -> None:
    families = served_families()
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    assert set(names) == tested, set(names) - tested
    for rule in rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        names_used = re.findall(r"\balert_delivery_[a-z_]+", rule["expr"])
        assert names_used or re.match(r"up\{", rule["expr"]), rule["expr"]
        for name in names_used:
            assert family_of(name, families) is not None, f"{rule['alert']}: {name} is not served"


def test_the_issue_s_alerts_are_all_there() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in rules()}
    assert "alert_delivery_dead_lettered_total" in exprs["AlertDeliveryDeadLettersGrowing"]
    assert "increase(" in exprs["AlertDeliveryDeadLettersGrowing"]
    assert "alert_delivery_oldest_pending_age_seconds" in exprs["AlertDeliveryOldestPendingTooOld"]
    assert "alert_delivery_database_up" in exprs["AlertDeliveryDatabaseDown"]
    assert "alert_delivery_live_workers" in exprs["AlertDeliveryNoLiveWorker"]
    assert 'state="open"' in exprs["AlertDeliveryBreakerOpen"]
