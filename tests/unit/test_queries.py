"""Named SQL blocks load from sql/queries and refuse duplicates."""

from pathlib import Path

import pytest

from alert_delivery.db import queries


def test_blocks_are_split_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "demo.sql").write_text(
        "-- name: first\nSELECT 1;\n\n-- name: second\nSELECT 2\nFROM t;\n"
    )
    monkeypatch.setattr(queries, "sql_dir", lambda: tmp_path)
    queries.load_module.cache_clear()
    try:
        assert queries.query("demo", "first") == "SELECT 1;"
        assert queries.query("demo", "second") == "SELECT 2\nFROM t;"
        with pytest.raises(KeyError, match="no query 'third'"):
            queries.query("demo", "third")
    finally:
        queries.load_module.cache_clear()


def test_duplicate_names_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "dup.sql").write_text("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    monkeypatch.setattr(queries, "sql_dir", lambda: tmp_path)
    queries.load_module.cache_clear()
    try:
        with pytest.raises(ValueError, match="defined twice"):
            queries.load_module("dup")
    finally:
        queries.load_module.cache_clear()


def test_packaged_or_repository_sql_dir_exists() -> None:
    assert (queries.sql_dir() / "migrations" / "0001_data_model.sql").exists()
