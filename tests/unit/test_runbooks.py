"""docs/runbooks: a page per alert type, every link resolves, every command exists."""

import re
import shlex
from pathlib import Path

import pytest

from alert_delivery.alerting.runbooks import PAGES, REPOSITORY_DIR, runbook_page
from alert_delivery.cli import build_parser
from alert_delivery.detection import baselines, bottlenecks
from alert_delivery.operations import pipeline_alerts

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / REPOSITORY_DIR
DOCS = sorted(RUNBOOKS.glob("*.md"))
SECTIONS = (
    "## What fired",
    "## How it is detected",
    "## First checks",
    "## Likely causes",
    "## Mitigation",
    "## Acknowledge, resolve, silence",
    "## Escalate when",
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE_COMMAND = re.compile(r"`(alert-delivery\s[^`]+)`")


def _check_in(path: Path, column: str) -> set[str]:
    """The values of ``column ... CHECK (column IN ('A', 'B'))`` in a migration."""
    text = path.read_text()
    match = re.search(rf"{column}\s+text[^,]*?CHECK \({column} IN \(([^)]*)\)\)", text, re.DOTALL)
    assert match, f"no CHECK on {column} in {path.name}"
    return set(re.findall(r"'([A-Z0-9_]+)'", match.group(1)))


def raised_alert_types() -> set[str]:
    """Every alert type the code raises: the anomaly and bottleneck types detection stores (the
    CHECK constraints and the constants), the baseline and pipeline alerts, and any literal
    ``alert_type="..."`` or ``ALERT_TYPE = "..."`` in the package."""
    migration = ROOT / "sql" / "migrations" / "0001_data_model.sql"
    found = _check_in(migration, "anomaly_type") | _check_in(migration, "bottleneck_type")
    found |= set(bottlenecks.RECOMMENDATIONS) | {kind for _, kind in bottlenecks.DEFAULT_FAMILIES}
    found |= {baselines.ALERT_TYPE, pipeline_alerts.ALERT_TYPE}
    anomalies = (ROOT / "alert_delivery" / "detection" / "anomalies.py").read_text()
    found |= set(re.findall(r'"(STATISTICAL|P99_DEGRADATION|COMBINED)"', anomalies))
    literal = re.compile(r'(?:alert_type\s*=\s*|ALERT_TYPE\s*=\s*)"([A-Z][A-Z0-9_]+)"')
    for source in (ROOT / "alert_delivery").rglob("*.py"):
        found |= set(literal.findall(source.read_text()))
    return found


def commands(text: str) -> list[str]:
    """``alert-delivery`` command lines in bash blocks and in inline code."""
    found = []
    for lang, body in FENCE.findall(text):
        if lang in ("bash", "sh", "console", ""):
            found += [line for line in body.splitlines() if line.startswith("alert-delivery ")]
    found += [" ".join(m.split()) for m in INLINE_COMMAND.findall(text)]
    return found


def anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+)$", FENCE.sub("", text), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_page_of_pages_exists_with_the_runbook_sections() -> None:
    for alert_type, page in PAGES.items():
        path = ROOT / (runbook_page(alert_type) or "")
        assert path == RUNBOOKS / f"{page}.md" and path.is_file(), alert_type
        text = path.read_text()
        assert alert_type in text.split("\n", 1)[0], f"{path.name} title names {alert_type}"
        missing = [s for s in SECTIONS if s not in text]
        assert not missing, f"{path.name} lacks {missing}"


def test_every_alert_type_raised_has_a_page() -> None:
    raised = raised_alert_types()
    assert {"STATISTICAL", "OBJECT_STORAGE_IO", "BASELINE_RECALC_ERROR"} <= raised
    assert raised - set(PAGES) == set()


def test_the_index_lists_every_page_and_no_page_is_orphaned() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    linked = set(LINK.findall(index))
    assert {f"{page}.md" for page in PAGES.values()} <= linked
    assert {p.name for p in DOCS} - {"README.md"} == {f"{page}.md" for page in PAGES.values()}


@pytest.mark.parametrize("doc", [*DOCS, ROOT / "README.md"], ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    text = doc.read_text()
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.exists(), f"{doc.name}: {target}"
        if fragment and resolved.suffix == ".md":
            assert fragment in anchors(resolved.read_text()), f"{doc.name}: {target}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_in_the_runbooks_exists(doc: Path) -> None:
    parser = build_parser()
    found = commands(doc.read_text())
    for line in found:
        argv = shlex.split(line)[1:]
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{doc.name}: not a valid command: {line}")
        assert getattr(args, "handler", None) is not None, f"{doc.name}: incomplete: {line}"
    if doc.name != "README.md":
        assert any(c.startswith("alert-delivery ack ") for c in found), doc.name


def test_the_family_table_matches_the_detection_families() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    rows = {
        kind: set(re.findall(r"`([^`]+)`", cells))
        for cells, kind in re.findall(r"^\| (`[^|]+) \| \[([A-Z_]+)\]", index, re.MULTILINE)
    }
    expected: dict[str, set[str]] = {}
    for pattern, kind in bottlenecks.DEFAULT_FAMILIES:
        expected.setdefault(kind, set()).add(pattern)
    assert rows == expected


def test_the_readme_links_the_runbooks_and_documents_the_base_url() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^## Runbooks$", readme, re.MULTILINE)
    assert "](docs/runbooks/README.md)" in readme
    table = [line for line in readme.splitlines() if line.startswith("| `ALERT_DELIVERY_")]
    assert any(line.startswith("| `ALERT_DELIVERY_RUNBOOK_URL` |") for line in table)
