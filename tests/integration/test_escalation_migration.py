"""0006 applies on top of 0001 alone (no other domain's migration), as every migration must."""

import shutil
from pathlib import Path

import psycopg

from alert_delivery.db.migrations import discover, upgrade


def test_escalation_migration_applies_on_the_data_model_alone(
    empty_db_url: str, tmp_path: Path
) -> None:
    for migration in discover():
        if migration.version in (1, 6):
            shutil.copy(migration.path, tmp_path / migration.filename)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        applied = upgrade(conn, tmp_path)
        assert [m.version for m in applied] == [1, 6]
        names = {
            r[0]
            for r in conn.execute(
                b"SELECT proname FROM pg_proc WHERE pronamespace = 'alert_delivery'::regnamespace"
            )
        }
        assert {"run_escalations", "send_escalation", "escalation_targets"} <= names
        assert conn.execute(b"SELECT count(*) FROM alert_delivery.escalation_queue").fetchone() == (
            0,
        )
