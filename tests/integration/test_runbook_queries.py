"""Every SQL statement the runbooks tell an SRE to run is valid on a migrated database."""

import re
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
FENCE = re.compile(r"^```sql\n(.*?)^```", re.DOTALL | re.MULTILINE)


def statements(doc: Path) -> list[str]:
    found = []
    for block in FENCE.findall(doc.read_text()):
        lines = [line for line in block.splitlines() if not line.lstrip().startswith("--")]
        found += [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
    return found


def test_runbook_sql_runs(conn: psycopg.Connection) -> None:
    # One database for every page: a fresh copy per page costs more than the queries.
    failures = []
    for doc in DOCS:
        found = statements(doc)
        if doc.name != "README.md" and not found:
            failures.append(f"{doc.name}: no SQL check")
        for statement in found:
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(b"SET TRANSACTION READ ONLY")
                    conn.execute(statement.encode())
            except psycopg.Error as exc:
                failures.append(f"{doc.name}: {exc}\n{statement}")
    assert not failures, "\n\n".join(failures)
