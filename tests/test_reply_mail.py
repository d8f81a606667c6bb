"""Email replies on the wire: STARTTLS and XOAUTH2 against a real SMTP server (aiosmtpd) on
loopback, and the seller's own mail coming back into the watched folder, through the pipeline.
"""

from __future__ import annotations

import base64
import shutil
import ssl
from collections.abc import Iterator
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from dovecot_fixtures import make_certificates
from helpers import need
from smtp_server import Inbox, authenticator, free_port
from test_app import Recorder, accept, lead_named, make_app, sample, started, until
from test_imap_unit import TokenEndpoint
from test_reply import SIZE, history, send_email_reply

from leadtui import config, mailer
from leadtui.capture import Pipeline, RawItem
from leadtui.config import Settings
from leadtui.store import Store

SELLER = "ravi.kumar@kumarclay.example.in"  # the To of the sample enquiries


@pytest.fixture
def filled(tmp_path: Path) -> str:
    """The sample enquiries through the pipeline, without the buyers' replies (10, 11)."""
    url = str(tmp_path / "leads.db")
    accept(url, [sample(f"{i:02d}") for i in range(1, 17) if i not in {10, 11}])
    return url


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        need("openssl is not installed (needed for the test certificate)")
    directory = tmp_path_factory.mktemp("smtp-tls")
    make_certificates(directory)
    return directory


class OAuthInbox(Inbox):
    """An SMTP server that takes XOAUTH2 (as Gmail does) for one user and one access token."""

    def __init__(self, user: str, token: str) -> None:
        super().__init__()
        self.expected = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
        self.answers: list[bytes] = []

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        answer = base64.b64decode(args[1]) if len(args) > 1 else b""
        self.answers.append(answer)
        if answer == self.expected:
            return AuthResult(success=True, auth_data=answer)
        # Gmail's way: an error challenge (JSON), the client's empty line, then 535.
        await server.challenge_auth(b'{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)


def start_tls_server(handler: Any, certificates: Path) -> Controller:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "cert.pem", certificates / "key.pem")
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,  # nothing but EHLO and STARTTLS in the clear
        auth_require_tls=True,  # no AUTH offered before TLS
        authenticator=authenticator,
    )
    controller.start()
    return controller


@pytest.fixture
def tls_smtp(certificates: Path) -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = start_tls_server(inbox, certificates)
    try:
        yield controller, inbox
    finally:
        controller.stop()


def starttls_settings(controller: Controller, certificates: Path, **more: Any) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": controller.port,
        "smtp_security": "starttls",
        "smtp_user": SELLER,
        "smtp_password": config.Secret("s3cret"),
        "smtp_ca_file": str(certificates / "ca.pem"),
        **more,
    }


# --------------------------------------------------------------------------- STARTTLS


def test_starttls_upgrades_before_the_login_and_delivers(
    tls_smtp: tuple[Controller, Inbox], certificates: Path
) -> None:
    controller, inbox = tls_smtp
    settings = Settings(**starttls_settings(controller, certificates))
    reply = mailer.Reply("priya@example.in", "Rates", "Namaste Priya", "m1@mail.indiamart.com")
    message_id = mailer.send(settings, reply)
    [(envelope, message)] = inbox.messages
    assert envelope.rcpt_tos == ["priya@example.in"]
    assert message["Message-ID"].strip() == message_id  # the server required STARTTLS first
    assert message["In-Reply-To"] == "<m1@mail.indiamart.com>"
    assert message.get_content().strip() == "Namaste Priya"


def test_starttls_with_an_unknown_certificate_says_so_in_one_line(
    tls_smtp: tuple[Controller, Inbox], certificates: Path
) -> None:
    controller, inbox = tls_smtp
    settings = Settings(**starttls_settings(controller, certificates, smtp_ca_file=""))
    with pytest.raises(mailer.MailError) as failed:
        mailer.send(settings, mailer.Reply("priya@example.in", "Rates", "Namaste"))
    text = str(failed.value)
    assert text.startswith(f"TLS with 127.0.0.1:{controller.port} failed: ")
    assert "CERTIFICATE_VERIFY_FAILED" in text
    assert "\n" not in text
    assert inbox.messages == []


# --------------------------------------------------------------------------- XOAUTH2


@pytest.fixture
def oauth_smtp(certificates: Path) -> Iterator[tuple[Controller, OAuthInbox]]:
    inbox = OAuthInbox(SELLER, "access-1")
    controller = start_tls_server(inbox, certificates)
    try:
        yield controller, inbox
    finally:
        controller.stop()


def oauth_settings(controller: Controller, certificates: Path, token_url: str) -> dict[str, Any]:
    """SMTP without a password of its own: the mailbox's XOAUTH2 grant signs in."""
    return {
        **starttls_settings(controller, certificates, smtp_password=config.Secret("")),
        "imap_user": SELLER,
        "imap_oauth_client_id": "client-id.apps.example",
        "imap_oauth_client_secret": config.Secret("client-secret-XYZ"),
        "imap_oauth_refresh_token": config.Secret("refresh-token-XYZ"),
        "imap_oauth_token_url": token_url,
        "seller_name": "Ravi",
    }


async def test_an_email_reply_signs_in_with_the_mailboxs_xoauth2_token(
    filled: str, oauth_smtp: tuple[Controller, OAuthInbox], certificates: Path
) -> None:
    controller, inbox = oauth_smtp
    with TokenEndpoint([(200, {"access_token": "access-1", "expires_in": 3600})]) as tokens:
        app = make_app(filled, **oauth_settings(controller, certificates, tokens.url))
        priya = lead_named(filled, "Priya Nair")
        async with app.run_test(size=SIZE) as pilot:
            await started(pilot)
            await send_email_reply(pilot, priya)
            await until(pilot, lambda: history(filled, priya.id, "sent"), "the sent event", 10)
    assert inbox.answers == [inbox.expected]
    assert tokens.forms[0]["refresh_token"] == "refresh-token-XYZ"
    [(envelope, message)] = inbox.messages
    assert envelope.rcpt_tos == ["priya.nair@example.in"]
    assert message["From"] == SELLER
    assert lead_named(filled, "Priya Nair").status == "contacted"


async def test_a_refused_xoauth2_token_keeps_the_draft_and_says_why_without_it(
    filled: str, oauth_smtp: tuple[Controller, OAuthInbox], certificates: Path
) -> None:
    controller, inbox = oauth_smtp
    with TokenEndpoint([(200, {"access_token": "stale-token", "expires_in": 3600})]) as tokens:
        app = make_app(filled, **oauth_settings(controller, certificates, tokens.url))
        priya = lead_named(filled, "Priya Nair")
        async with app.run_test(size=SIZE) as pilot:
            await started(pilot)
            heard = Recorder(app)
            await send_email_reply(pilot, priya)
            failed = await until(
                pilot, lambda: [t for t in heard.toasts if "not sent" in t], "the failure", 10
            )
    assert failed == [
        f"Email to Priya Nair not sent: the mail server 127.0.0.1:{controller.port} refused the "
        f"XOAUTH2 login for {SELLER}: the mailbox's token may lack the mail-sending scope; or "
        "set [smtp] password. R offers it again."
    ]
    for secret in ("stale-token", "refresh-token-XYZ", "client-secret-XYZ"):
        assert secret not in failed[0]
    assert inbox.messages == []
    assert history(filled, priya.id, "sent") == []


# --------------------------------------------------------------------------- own mail


def test_the_sellers_own_mail_is_never_a_lead_nor_a_buyers_reply(
    filled: str, smtp_delivered: list[bytes]
) -> None:
    """The reply leadtui sent (as the SMTP server received it), and IndiaMART's relayed copy
    of it, reach the watched folder: both are kept and ignored; the buyer's real reply is not."""
    settings = Settings(db=filled, smtp_user=SELLER, seller_emails=("sales@kumarclay.example.in",))
    priya = lead_named(filled, "Priya Nair")
    [own] = smtp_delivered
    relayed = sample("11").body.replace(
        b"<55f82ccf.26fd1c98d71a.191b1b@mail.indiamart.com>",
        make_msgid("leadtui", domain="kumarclay.example.in").encode(),
    )
    with Store.open(filled) as store:
        pipeline = Pipeline(store, settings.own_addresses)
        before = store.count_leads()
        outcomes = [pipeline.accept(RawItem(body, source="imap:test")) for body in (own, relayed)]
        assert [o.status for o in outcomes] == ["ignored", "ignored"]
        assert outcomes[0].detail == f"not a lead: your own mail (from {SELLER})"
        assert outcomes[1].detail == "not a lead: a reply leadtui sent"
        assert store.count_leads() == before
        assert store.messages(priya.id) == []
        assert store.raw_body(outcomes[0].raw_id) == own  # kept, as every item is
        buyer = pipeline.accept(sample("11"))  # the buyer's own reply still is one
        assert buyer.status == "reply"
        assert len(store.messages(priya.id)) == 1


@pytest.fixture
def smtp_delivered() -> Iterator[list[bytes]]:
    """The bytes of one reply as leadtui's mailer delivers it to a real SMTP server."""
    inbox = Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    try:
        settings = Settings(
            smtp_host="127.0.0.1", smtp_port=controller.port, smtp_security="plain",
            smtp_user=SELLER, smtp_password=config.Secret("s3cret"),
        )  # fmt: skip
        reply = mailer.Reply(
            "priya.nair.c07cb7@reply.indiamart.com",
            "Re: Enquiry for Terracotta Floor Tiles from Priya via IndiaMART",
            "Namaste Priya, our rate list is attached.\n\n> Enquiry for Terracotta Floor Tiles",
            "e1b0b0b0@mail.indiamart.com",
        )
        mailer.send(settings, reply)
        yield [envelope.original_content or b"" for envelope, _message in inbox.messages]
    finally:
        controller.stop()
