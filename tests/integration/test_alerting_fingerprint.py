"""The SQL and Python fingerprints agree (kept from the retired formatter parity test; the
label-set fingerprint of 0008 replaces both sides)."""

import psycopg

from alert_delivery.alerting.fingerprint import content_hash, fingerprint
from tests.support.alerting import alert


def test_fingerprints_agree(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT alert_delivery.alert_fingerprint('s', 'op|x', 'T', 'INFO'),"
        " alert_delivery.alert_content_hash('abc', 'tïtle', 'd')"
    ).fetchone()
    assert row == (fingerprint("s", "op|x", "T", "INFO"), content_hash("abc", "tïtle", "d"))
    raised = alert(conn)
    stored = conn.execute(
        "SELECT fingerprint, content_hash FROM alert_delivery.alerts WHERE alert_id = %s",
        (raised.alert_id,),
    ).fetchone()
    fp = fingerprint("test", "merge", "STATISTICAL", "CRITICAL")
    assert stored == (fp, content_hash(fp, "merge latency anomaly", "p99 is 5x the baseline"))
