"""The calls documented for the demo in ``alert_delivery.detection.synthetic`` run as written."""

import textwrap

import psycopg

from alert_delivery.detection import synthetic


def documented_snippet() -> str:
    doc = synthetic.__doc__ or ""
    block = doc.split("The demo's calls", 1)[1].split("::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_documented_demo_calls_find_a_critical_spike_quickly(db_url: str) -> None:
    code = documented_snippet()
    assert "load_metric_rows" in code and "detect_anomalies" in code
    with psycopg.connect(db_url) as conn:
        exec(code, {"conn": conn})
        rows = conn.execute(
            b"SELECT operation_type, severity FROM alert_delivery.anomalies"
            b" WHERE severity = 'CRITICAL'"
        ).fetchall()
        assert rows == [("merge", "CRITICAL")]
        baselines = conn.execute(b"SELECT count(*) FROM alert_delivery.baselines").fetchone()
        assert baselines == (6,)
        pairs = conn.execute(b"SELECT count(*) FROM alert_delivery.correlations").fetchone()
        assert pairs == (15,)
