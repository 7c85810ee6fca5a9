"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it is sent."""

import email
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.receivers import closed_port


class Mailbox:
    """Keeps every message; answers ``code`` (set it to 451 or 554 to refuse)."""

    def __init__(self, code: str = "250 OK") -> None:
        self.messages: list[Message] = []
        self.code = code

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.code.startswith("250"):
            self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return self.code


@contextmanager
def smtp_server(handler: object, **options: Any) -> Iterator[int]:
    """Serve ``handler`` on a free port until the block ends; yields the port."""
    port = closed_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
