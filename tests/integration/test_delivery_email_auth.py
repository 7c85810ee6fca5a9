"""Email with SMTP AUTH: STARTTLS first, then login, a Date header; never credentials in clear."""

import datetime as dt
import email
import ipaddress
import ssl
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alert_delivery.config import Settings
from alert_delivery.delivery.engine import deliver_batch
from alert_delivery.delivery.registry import add_webhook, list_webhooks
from tests.support.delivery import FAST, delivery_env, enqueue, queue_rows
from tests.support.smtp import smtp_server

__all__ = ["delivery_env"]

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the address the sender dials)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class AuthMailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    def authenticate(
        self, server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        self.logins.append(login)
        return AuthResult(success=login == ("alerts", "s3cr:t/pw"))


@pytest.fixture
def tls_smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AuthMailbox, int]]:
    cert, key = _certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the sender's default context trusts it
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = AuthMailbox()
    with smtp_server(
        box,
        tls_context=context,
        require_starttls=True,
        authenticator=box.authenticate,
        auth_require_tls=True,
    ) as port:
        yield box, port


def test_credentials_go_over_starttls_and_the_message_has_a_date(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings, tls_smtp: tuple[AuthMailbox, int]
) -> None:
    box, port = tls_smtp
    hook = add_webhook(
        db_url,
        name="mail",
        kind="email",
        url=f"smtp://alerts:s3cr%3At%2Fpw@127.0.0.1:{port}",
        config={"to": ["oncall@example.com"], "from": "alerts@example.com"},
        settings=delivery_env,
    )
    [listed] = list_webhooks(db_url)
    assert "s3cr" not in listed.url_redacted and "alerts@" not in listed.url_redacted
    stored = conn.execute("SELECT url_encrypted FROM alert_delivery.webhooks").fetchone()
    assert stored is not None and "s3cr" not in stored[0]
    [did] = enqueue(conn, hook.webhook_id, [{"subject": "s", "text": "t"}])
    result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
    assert result.delivered == 1, queue_rows(conn)[did]
    assert box.logins == [("alerts", "s3cr:t/pw")]
    [msg] = box.messages
    assert email.utils.parsedate_to_datetime(msg["Date"]).tzinfo is not None


def test_no_starttls_means_no_credentials_sent(
    db_url: str, conn: psycopg.Connection, delivery_env: Settings
) -> None:
    box = AuthMailbox()
    with smtp_server(box) as port:  # plain, no STARTTLS
        hook = add_webhook(
            db_url,
            name="mail",
            kind="email",
            url=f"smtp://alerts:pw@127.0.0.1:{port}",
            config={"to": ["oncall@example.com"], "from": "alerts@example.com"},
            settings=delivery_env,
        )
        [did] = enqueue(conn, hook.webhook_id, [{"subject": "s", "text": "t"}])
        result = deliver_batch(db_url, worker_id="t", config=FAST, settings=delivery_env)
    assert result.dead == 1 and not box.messages and not box.logins
    assert "STARTTLS" in (queue_rows(conn)[did]["last_error"] or "")
