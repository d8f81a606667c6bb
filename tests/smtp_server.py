"""A real SMTP server for the tests: aiosmtpd on a free loopback port, with AUTH.

The reply (``R``), the outbox's email target and the automatic acknowledgement all send mail
through it and read back what arrived (recipient, headers, text). The ``smtp`` fixture in
conftest.py starts one per test.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
from collections.abc import Iterator
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

PASSWORD = "s3cret"  # what authenticator() accepts


class Inbox:
    """A handler for aiosmtpd that keeps what it was sent."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, email.message.EmailMessage]] = []

    async def handle_DATA(self, _server: Any, _session: Session, envelope: Envelope) -> str:
        body = envelope.original_content or b""
        parsed = email.message_from_bytes(body, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 OK"


def authenticator(
    _server: Any, _session: Session, _envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    good = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
    return AuthResult(success=good, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving() -> Iterator[tuple[Controller, Inbox]]:
    """An SMTP server taking AUTH without TLS, until the block ends."""
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
        auth_exclude_mechanism=["DONT"],
    )
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()
