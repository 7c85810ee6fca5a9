"""Re-encrypt every stored URL and secret under the first configured key."""

from alert_delivery.config import Settings, load_settings
from alert_delivery.db.connection import connect
from alert_delivery.delivery.secrets import load_vault


def rotate_all(db_url: str, settings: Settings | None = None) -> int:
    """One transaction: either every webhook moves to the new key or none does."""
    vault = load_vault(settings or load_settings())
    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT webhook_id, url_encrypted, secret_encrypted FROM alert_delivery.webhooks"
            " ORDER BY webhook_id FOR UPDATE"
        ).fetchall()
        for webhook_id, url_token, secret_token in rows:
            conn.execute(
                "UPDATE alert_delivery.webhooks SET url_encrypted = %s, secret_encrypted = %s,"
                " key_id = %s, updated_at = now() WHERE webhook_id = %s",
                (
                    vault.rotate(url_token) if url_token else None,
                    vault.rotate(secret_token) if secret_token else None,
                    vault.primary_key_id,
                    webhook_id,
                ),
            )
        conn.commit()
    return len(rows)
