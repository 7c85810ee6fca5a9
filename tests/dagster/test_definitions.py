"""The code location loads through workspace.yaml and names what the design promises."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_from_workspace() -> dg.Definitions:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    [entry] = workspace["load_from"]
    module = importlib.import_module(entry["python_module"]["module_name"])
    defs = getattr(module, entry["python_module"]["attribute"])
    assert isinstance(defs, dg.Definitions)
    return defs


def test_definitions_name_expected_assets_jobs_sensors_schedules() -> None:
    defs = load_from_workspace()
    assets = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"baselines", "anomalies", "correlations", "alerts"} <= assets
    assert {"delivery_report", "response_sla_report", "escalation_report"} <= assets
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert {"deliver_pending", "retry_sweep", "replay_dead", "escalate"} <= jobs
    assert {"recalculate_baselines", "detect_hourly"} <= jobs
    sensors = {sensor.name for sensor in defs.sensors or []}
    assert {"delivery_queue_sensor", "pipeline_failure_alert"} <= sensors
    names = {schedule.name for schedule in defs.schedules or []}
    expected = {
        "baselines_daily": ("recalculate_baselines", "10 0 * * *"),
        "detection_hourly": ("detect_hourly", "5 * * * *"),
        "retry_sweep_every_5_minutes": ("retry_sweep", "*/5 * * * *"),
        "escalate_every_minute": ("escalate", "* * * * *"),
    }
    assert set(expected) <= names
    for name, (job, cron) in expected.items():
        schedule = defs.resolve_schedule_def(name)
        assert (schedule.job_name, schedule.cron_schedule) == (job, cron)


def test_resources_and_in_process_executor() -> None:
    defs = load_from_workspace()
    resources = defs.resources or {}
    assert "postgres" in resources
    assert "webhook_sender" in resources
    job = defs.resolve_job_def("deliver_pending")
    assert job.executor_def.name == dg.in_process_executor.name


def test_hourly_assets_share_one_partitions_definition() -> None:
    from alert_delivery.defs.partitions import HOURLY

    graph = load_from_workspace().resolve_asset_graph()
    for key in ("anomalies", "correlations", "alerts"):
        assert graph.get(dg.AssetKey(key)).partitions_def == HOURLY


def test_dagster_cli_validates_workspace(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "All code locations passed validation" in proc.stdout + proc.stderr
