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
    lazy = getattr(module, entry["python_module"]["attribute"])
    # A @dg.definitions function: Dagster calls it when the code location loads.
    assert not isinstance(lazy, dg.Definitions)
    defs = lazy()
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
    sensors = {sensor.name: sensor for sensor in defs.sensors or []}
    assert set(sensors) == {
        "delivery_queue_sensor",
        "retry_sweep_sensor",
        "escalation_due",
        "pipeline_failure_alert",
    }
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())
    names = {schedule.name for schedule in defs.schedules or []}
    expected = {
        "baselines_daily": ("recalculate_baselines", "10 0 * * *"),
        "detection_hourly": ("detect_hourly", "5 * * * *"),
        "reports_hourly": ("reports_hourly", "15 * * * *"),
        "escalation_report_hourly": ("escalation_report_hourly", "15 * * * *"),
        "log_partitions": ("log_partitions", "5 0 * * *"),
    }
    assert set(expected) == names
    for name, (job, cron) in expected.items():
        schedule = defs.resolve_schedule_def(name)
        assert (schedule.job_name, schedule.cron_schedule) == (job, cron)
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_every_job_carries_the_kind_tag_the_run_queue_limits() -> None:
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    limited = {
        limit["value"] for limit in config["run_coordinator"]["config"]["tag_concurrency_limits"]
    }
    for job in load_from_workspace().resolve_all_job_defs():
        if job.name.startswith("__"):
            continue
        assert job.tags.get("alert_delivery/kind") in limited, job.name


def test_lineage_runs_from_alerts_through_deliveries_to_reports() -> None:
    graph = load_from_workspace().resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}

    assert parents("delivery_queue") == {"alerts"}
    assert parents("delivery_log") == {"delivery_queue"}
    assert parents("delivery_report") == {"delivery_log"}
    assert parents("response_sla_report") == {"alerts"}
    assert parents("escalation_report") == {"alerts", "delivery_queue"}


def test_partitions_start_from_the_setting_or_a_recent_default() -> None:
    from datetime import UTC, datetime

    from alert_delivery.config import load_settings
    from alert_delivery.definitions import load_definitions

    now = datetime(2026, 12, 1, 13, 9, tzinfo=UTC)
    default = load_definitions(load_settings({}), now=now).resolve_asset_graph()
    hourly = default.get(dg.AssetKey("anomalies")).partitions_def
    assert isinstance(hourly, dg.HourlyPartitionsDefinition)
    assert hourly.start == datetime(2026, 11, 24, tzinfo=UTC)
    set_ = load_definitions(
        load_settings({"ALERT_DELIVERY_PARTITIONS_START": "2026-11-30T06:00Z"}), now=now
    ).resolve_asset_graph()
    for key in ("anomalies", "correlations", "alerts", "delivery_report"):
        part = set_.get(dg.AssetKey(key)).partitions_def
        assert isinstance(part, dg.HourlyPartitionsDefinition)
        assert part.start == datetime(2026, 11, 30, 6, tzinfo=UTC)
        assert len(part.get_partition_keys(current_time=now)) == 31


def test_resources_and_in_process_executor() -> None:
    defs = load_from_workspace()
    resources = defs.resources or {}
    assert "postgres" in resources
    assert "webhook_sender" in resources
    job = defs.resolve_job_def("deliver_pending")
    assert job.executor_def.name == dg.in_process_executor.name


def test_hourly_assets_share_one_partitions_definition_and_one_backfill_run() -> None:
    defs = load_from_workspace()
    graph = defs.resolve_asset_graph()
    hourly = graph.get(dg.AssetKey("anomalies")).partitions_def
    for key in ("anomalies", "correlations", "alerts"):
        node = graph.get(dg.AssetKey(key))
        assert node.partitions_def == hourly
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert defs.resolve_job_def("detect_hourly").partitions_def == hourly


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
