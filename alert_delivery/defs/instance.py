"""The Dagster instance for development: PostgreSQL storage in a ``dagster`` database.

Development keeps Dagster's run history on the same embedded server as the alert data, so the
daemon, the webserver and every run process share one storage that handles concurrent writers
(SQLite's file locks do not), and run history sits beside the delivery log it audits.
"""

import contextlib
import os
import shutil
from pathlib import Path

import psycopg
from psycopg import conninfo

from alert_delivery.config import Settings
from alert_delivery.db.connection import connect, with_dbname
from alert_delivery.db.queries import sql_dir

DAGSTER_DATABASE = "dagster"


def dagster_yaml_template() -> Path:
    """Beside ``sql/``: the repository root when editable, the package in a wheel."""
    return sql_dir().parent / "dagster.yaml"


def sqlalchemy_url(libpq_url: str, dbname: str = DAGSTER_DATABASE) -> str:
    """``postgresql+psycopg2://`` form of a libpq URL (Dagster's storage needs the driver name)."""
    parts = conninfo.conninfo_to_dict(libpq_url)
    user = parts.get("user") or "postgres"
    password = f":{parts['password']}" if parts.get("password") else ""
    host = str(parts.get("host") or "")
    port = parts.get("port")
    if host.startswith("/"):
        return f"postgresql+psycopg2://{user}{password}@/{dbname}?host={host}"
    where = f"{host}:{port}" if port else host
    return f"postgresql+psycopg2://{user}{password}@{where}/{dbname}"


def prepare_dagster_home(settings: Settings, database_url: str) -> dict[str, str]:
    """Create DAGSTER_HOME with a dagster.yaml and, when unset, point DAGSTER_PG_URL at a
    ``dagster`` database on the alert-delivery server. Returns (and applies) the environment."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(dagster_yaml_template(), target)
    env = {"DAGSTER_HOME": str(home)}
    if not os.environ.get("DAGSTER_PG_URL"):
        with connect(database_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DAGSTER_DATABASE,)
            ).fetchone()
            if not exists:
                # Another process may create it between the check and here.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{DAGSTER_DATABASE}"'.encode())
        env["DAGSTER_PG_URL"] = sqlalchemy_url(with_dbname(database_url, DAGSTER_DATABASE))
    os.environ.update(env)
    return env
