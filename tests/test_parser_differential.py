"""The MIME walker against the stdlib, over every mail fixture of this project.

``leadtui.formats.mime`` replaces the stdlib ``email`` package for speed, so it must read
what the stdlib reads: the same decoded text and HTML parts (``policy.default``, which
decodes with replacement per bad byte and knows RFC 2231) and the same subject and sender
(``compat32`` headers through ``decode_header``). Where the stdlib is wrong, the fixture is
listed with the reason, and the walker's own answer is checked instead.
"""

from __future__ import annotations

import email
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr
from pathlib import Path

import pytest

from leadtui.formats.html import text_to_lines
from leadtui.formats.mime import Mail
from leadtui.formats.text import clean_text

FIXTURES = Path(__file__).parent / "fixtures"
MAILS = sorted((FIXTURES / "samples" / "email").glob("*.eml")) + sorted(
    (FIXTURES / "mail").glob("*.eml")
)
# Fixtures on which the stdlib is wrong: why, and the subject and text lines the walker reads.
STDLIB_WRONG: dict[str, tuple[str, str, list[str]]] = {
    "x-mac-cyrillic.eml": (
        "Python has no codec named x-mac-cyrillic: the stdlib raises LookupError",
        "Inquiry from Ivan Petrov for Clay Bricks",
        ["Покупатель: Иван Петров", "Товар: кирпич"],
    ),
    "bom-before-headers.eml": (
        "after a byte-order mark the stdlib reads no header at all",
        "Inquiry from Pooja Menon for Clay Roof Tiles",
        ["Product Details: Clay Roof Tiles"],
    ),
}


AGREED = [path for path in MAILS if path.name not in STDLIB_WRONG]


def _stdlib_part(raw: bytes, ctype: str) -> str | None:
    msg = email.message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == ctype and not part.is_attachment():
            assert isinstance(part, Message)
            return str(part.get_content())
    return None


def _stdlib_header(raw: bytes, name: str) -> str:
    value = email.message_from_bytes(raw, policy=policy.compat32)[name]
    return clean_text(str(make_header(decode_header(value)))) or "" if value else ""


def test_there_are_fixtures_to_compare() -> None:
    assert len(MAILS) >= 20


@pytest.mark.parametrize("path", AGREED, ids=lambda path: path.name)
def test_text_parts_match_the_stdlib(path: Path) -> None:
    raw = path.read_bytes()
    mail = Mail(raw)
    for ctype, mine in (("text/plain", mail.text), ("text/html", mail.html)):
        theirs = _stdlib_part(raw, ctype)
        assert (mine is None) == (theirs is None), ctype
        if mine is not None and theirs is not None:
            assert text_to_lines(mine) == text_to_lines(theirs), ctype
            assert "\ufffd" not in mine or "\ufffd" in theirs, "a bad byte cost more than itself"


@pytest.mark.parametrize("path", AGREED, ids=lambda path: path.name)
def test_subject_and_sender_match_the_stdlib(path: Path) -> None:
    raw = path.read_bytes()
    mail = Mail(raw)
    assert mail.subject == _stdlib_header(raw, "subject")
    sender = email.message_from_bytes(raw, policy=policy.compat32)["from"]
    assert mail.sender == parseaddr(str(sender))[1].lower()


@pytest.mark.parametrize("name", sorted(STDLIB_WRONG))
def test_where_the_stdlib_is_wrong_the_walker_reads_the_mail(name: str) -> None:
    _, subject, lines = STDLIB_WRONG[name]
    mail = Mail((FIXTURES / "mail" / name).read_bytes())
    assert mail.subject == subject
    assert mail.sender == "rfis@rfis.tradeindia.com"
    assert text_to_lines(mail.text or "") == lines
