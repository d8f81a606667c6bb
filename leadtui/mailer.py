"""Email replies over SMTP: one message to the buyer, threaded onto the original enquiry.

Blocking (smtplib), so it runs in a thread worker, with a timeout on every step. Every way a
send can fail is one :class:`MailError` whose text is a single line a salesperson can act on,
with no secret in it.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, getaddresses, make_msgid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leadtui.config import Settings

TIMEOUT = 15.0  # seconds for the connection and for each SMTP command


class MailError(Exception):
    """A reply that was not sent; ``str()`` is one line saying why."""


@dataclass(frozen=True, slots=True)
class Reply:
    to: str
    subject: str
    text: str
    in_reply_to: str | None = None  # the original mail's Message-ID, without angle brackets
    headers: tuple[tuple[str, str], ...] = ()  # more headers (an outbox event's id)


def original_reply_to(raw: bytes | None) -> str | None:
    """The address a reply to the original mail goes to (its Reply-To), when it has one.

    IndiaMART hides a buyer's address behind a relay in Reply-To; replying there reaches them.
    """
    if not raw:
        return None
    headers = BytesHeaderParser().parsebytes(raw)
    for _name, address in getaddresses(headers.get_all("reply-to", [])):
        if "@" in address:
            return address
    return None


def build(reply: Reply, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = reply.to
    message["Subject"] = reply.subject
    message["Date"] = formatdate(localtime=True)
    domain = sender.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid("leadtui", domain=domain)
    if reply.in_reply_to:
        original = f"<{reply.in_reply_to.strip('<>')}>"
        message["In-Reply-To"] = original
        message["References"] = original
    for name, value in reply.headers:
        message[name] = value
    message.set_content(reply.text)
    return message


class XOAuth2:
    """The XOAUTH2 client answer, as Gmail and Outlook take it. A second call is the server's
    error challenge: an empty answer ends the exchange with its refusal (535)."""

    def __init__(self, user: str, token: str) -> None:
        self._user = user
        self._token = token

    def __call__(self, challenge: bytes | None = None, /) -> str:
        return "" if challenge else f"user={self._user}\x01auth=Bearer {self._token}\x01\x01"


def send(
    settings: Settings,
    reply: Reply,
    timeout: float = TIMEOUT,
    access_token: Callable[[], str] | None = None,
) -> str:
    """Send ``reply``; returns its Message-ID. Raises :class:`MailError` in one line.

    With ``access_token`` (the mailbox's XOAUTH2 token source) the login is XOAUTH2 instead of
    a password; a token that cannot be had is a :class:`MailError` too (raised by the caller's
    source as any exception whose text is safe to show)."""
    if not settings.smtp_configured:
        raise MailError("email is not set up: set [smtp] host (and user, password) in the config")
    try:
        Address(addr_spec=reply.to)
    except (ValueError, IndexError):
        raise MailError(f"{reply.to!r} is not an email address") from None
    user, password = settings.smtp_login
    sender = settings.smtp_from or user
    if "@" not in sender:
        raise MailError("no From address: set [smtp] from (or user) to your email address")
    message = build(reply, sender)
    host, port = settings.smtp_host, settings.smtp_effective_port
    where = f"{host}:{port}"
    context = ssl.create_default_context(
        cafile=settings.smtp_ca_file or settings.imap_ca_file or None
    )
    try:
        client: smtplib.SMTP
        if settings.smtp_security == "ssl":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=context)
            if access_token is not None:
                client.ehlo_or_helo_if_needed()
                client.auth("XOAUTH2", XOAuth2(user, access_token()))
            elif user and password:
                client.login(user, password.reveal())
            client.send_message(message)
    except smtplib.SMTPAuthenticationError:
        if access_token is not None:
            raise MailError(
                f"the mail server {where} refused the XOAUTH2 login for {user}: the mailbox's "
                "token may lack the mail-sending scope; or set [smtp] password"
            ) from None
        raise MailError(
            f"the mail server {where} refused the login for {user}: check [smtp] user and "
            "password (Gmail wants an app password)"
        ) from None
    except smtplib.SMTPRecipientsRefused:
        raise MailError(f"the mail server {where} refused the address {reply.to}") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"the mail server {where} cannot do that: {_first(exc)}") from None
    except smtplib.SMTPServerDisconnected:
        raise MailError(f"the mail server {where} closed the connection; try again") from None
    except TimeoutError:
        raise MailError(f"the mail server {where} did not answer within {timeout:.0f} s") from None
    except ssl.SSLError as exc:
        raise MailError(f"TLS with {where} failed: {exc.reason or _first(exc)}") from None
    except smtplib.SMTPException as exc:
        raise MailError(f"the mail server {where} refused the message: {_first(exc)}") from None
    except OSError as exc:
        raise MailError(f"cannot reach the mail server {where}: {exc.strerror or exc}") from None
    return str(message["Message-ID"])


def _first(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"{exc.smtp_code} {' '.join(text.split())}"
    return (str(exc).splitlines() or [type(exc).__name__])[0]
