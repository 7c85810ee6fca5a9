"""Worker options from the environment (a flag wins), validated like the flags; the demo's
settings reach `alert-delivery ui`."""

import argparse
from pathlib import Path

import pytest

from alert_delivery.cli import build_parser
from alert_delivery.cli.ui import demo_environment
from alert_delivery.cli.worker import apply_environment
from alert_delivery.config import load_settings
from alert_delivery.errors import ConfigurationError


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["worker", *argv])


def test_environment_fills_unset_flags_and_flags_win() -> None:
    args = _args("--batch-size", "7")
    apply_environment(
        args,
        {
            "ALERT_DELIVERY_WORKER_CONCURRENCY": "8",
            "ALERT_DELIVERY_WORKER_BATCH_SIZE": "900",
            "ALERT_DELIVERY_WORKER_POLL_INTERVAL": "0.25",
            "ALERT_DELIVERY_WORKER_LEASE": "30",
            "ALERT_DELIVERY_WORKER_METRICS_PORT": "9464",
        },
    )
    got = vars(args)
    assert (got["concurrency"], got["batch_size"], got["poll_interval"]) == (8, 7, 0.25)
    assert (got["lease"], got["metrics_port"]) == (30.0, 9464)
    defaults = _args()
    apply_environment(defaults, {})
    assert (vars(defaults)["concurrency"], vars(defaults)["lease"]) == (50, 120.0)
    assert vars(defaults)["metrics_port"] is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONCURRENCY", "0"),
        ("CONCURRENCY", "2.5"),
        ("POLL_INTERVAL", "nan"),
        ("LEASE", "inf"),
        ("LEASE", "-1"),
        ("BATCH_SIZE", "1000001"),
        ("METRICS_PORT", "70000"),
    ],
)
def test_bad_environment_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"ALERT_DELIVERY_WORKER_{name}"):
        apply_environment(_args(), {f"ALERT_DELIVERY_WORKER_{name}": value})


def test_ui_takes_the_allow_list_the_demo_ran_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERT_DELIVERY_ALLOWED_TARGETS", raising=False)
    settings = load_settings({"ALERT_DELIVERY_HOME": str(tmp_path)})
    assert demo_environment(settings) == {}
    (tmp_path / "demo.env").write_text("ALERT_DELIVERY_ALLOWED_TARGETS=127.0.0.1/32\nOTHER=x\n")
    assert demo_environment(settings) == {"ALERT_DELIVERY_ALLOWED_TARGETS": "127.0.0.1/32"}
    monkeypatch.setenv("ALERT_DELIVERY_ALLOWED_TARGETS", "10.0.0.0/8")
    assert demo_environment(settings) == {}
    production = load_settings(
        {"ALERT_DELIVERY_HOME": str(tmp_path), "ALERT_DELIVERY_ENV": "production"}
    )
    monkeypatch.delenv("ALERT_DELIVERY_ALLOWED_TARGETS")
    assert demo_environment(production) == {}


def test_json_log_format_is_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from alert_delivery.cli import logformat

    args = build_parser().parse_args(["worker", "--log-format", "json"])
    assert args.log_format == "json"
    assert build_parser().parse_args(["--log-format", "json", "ui"]).log_format == "json"
    assert build_parser().parse_args(["ui"]).log_format == "text"
    logformat.configure(logging.INFO, "json")
    try:
        logging.getLogger("alert_delivery.worker").warning("claimed %d rows", 3)
        [line] = capsys.readouterr().err.strip().splitlines()
        entry = json.loads(line)
        assert set(entry) == {"time", "level", "logger", "message"}
        assert (entry["level"], entry["logger"], entry["message"]) == (
            "WARNING",
            "alert_delivery.worker",
            "claimed 3 rows",
        )
    finally:
        logformat.configure(logging.WARNING, "text")
