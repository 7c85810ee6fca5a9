"""Run concurrency that holds: runs queued through dagster.yaml's QueuedRunCoordinator are
dequeued no more than the alert_delivery/kind limits allow (delivery 2, detection 1)."""

from collections import Counter
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test, create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_kind_limits_hold_for_queued_runs() -> None:
    shipped = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    overrides = {
        "run_coordinator": shipped["run_coordinator"],
        # Records launches instead of starting processes: the queue's decisions are the test.
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    target = ModuleTarget(
        module_name="alert_delivery.definitions",
        attribute="defs",
        working_directory=str(ROOT),
        location_name="alert_delivery",
    )
    with (
        dg.instance_for_test(overrides=overrides) as instance,
        create_test_daemon_workspace_context(target, instance) as workspace,
    ):
        [entry] = workspace.create_request_context().get_code_location_entries().values()
        assert entry.code_location is not None, entry.load_error
        repo = entry.code_location.get_repository("__repository__")
        for name in ["deliver_pending"] * 4 + ["retry_sweep"] + ["detect_hourly"] * 3:
            job = repo.get_full_job(name)
            create_run_for_test(
                instance,
                job_name=name,
                remote_job_origin=job.get_remote_origin(),
                job_code_origin=job.get_python_origin(),
                status=DagsterRunStatus.QUEUED,
                tags=dict(job.tags),
            )
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        for _ in range(3):  # further iterations must not launch past the limits either
            list(daemon.run_iteration(workspace))
        launched = instance.run_launcher.queue()  # type: ignore[attr-defined]
        kinds = Counter(run.tags["alert_delivery/kind"] for run in launched)
        assert kinds == {"delivery": 2, "detection": 1}
        queued = instance.get_runs(dg.RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
        assert len(queued) == 5
