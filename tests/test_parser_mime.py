"""The parser's own MIME walker agrees with the stdlib ``email`` package.

``leadtui.formats.mime`` replaces the stdlib for speed; these tests generate messages with
the stdlib (every transfer encoding, several charsets, nested wrappers, folded encoded
headers, LF and CRLF) and check that both read the same headers and text parts.
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadtui.formats.html import text_to_lines
from leadtui.formats.mime import Mail, decode_base64, decode_words
from leadtui.formats.text import clean_text

# Text the stdlib can round-trip in every charset drawn below (no C1 controls, no surrogates).
_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc"),
        exclude_characters="\u2028\u2029\x85",
    )
    | st.sampled_from("\n\t éü€’“”–—✓राजेश"),
    max_size=300,
)
_CHARSETS = st.sampled_from(["utf-8", "windows-1252", "iso-8859-1"])
_CTES = st.sampled_from(["quoted-printable", "base64", "8bit", "7bit"])


def _encodable(text: str, charset: str) -> str:
    return text.encode(charset, "ignore").decode(charset)


@dataclass(frozen=True)
class Spec:
    charset: str
    cte: str
    plain: str
    html: str
    subject: str
    shape: str
    crlf: bool


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    charset = draw(_CHARSETS)
    return Spec(
        charset=charset,
        cte=draw(_CTES),
        plain=_encodable(draw(_TEXT), charset),
        html=_encodable(draw(_TEXT), charset),
        subject=draw(st.text(min_size=1, max_size=120).filter(lambda s: s.splitlines() == [s])),
        shape=draw(st.sampled_from(["plain", "html", "alternative", "related", "mixed"])),
        crlf=draw(st.booleans()),
    )


def build(spec: Spec) -> bytes:
    """The stdlib writes the message (outside the strategy: it draws MIME boundaries at random)."""
    charset, cte, plain, html, shape = spec.charset, spec.cte, spec.plain, spec.html, spec.shape
    msg = EmailMessage()
    msg["From"] = "IndiaMART <buyershelp+enq@indiamart.com>"
    msg["Subject"] = spec.subject
    msg["Message-ID"] = "<abc.123@mail.indiamart.com>"
    if cte == "7bit" and not (plain + html).isascii():
        cte = "quoted-printable"
    if shape in ("html", "related"):
        msg.set_content(html, subtype="html", charset=charset, cte=cte)
    else:
        msg.set_content(plain, charset=charset, cte=cte)
    if shape in ("alternative", "mixed"):
        msg.add_alternative(html, subtype="html", charset=charset, cte=cte)
    if shape == "related":
        msg.add_related(b"\x89PNG" * 20, maintype="image", subtype="png", cid="<logo>")
    if shape == "mixed":
        msg.add_attachment(
            b"%PDF-1.4" * 30, maintype="application", subtype="pdf", filename="q.pdf"
        )
        msg.add_attachment("<p>attached, not the body</p>", subtype="html", filename="a.html")
    return msg.as_bytes(policy=policy.SMTP if spec.crlf else policy.default)


def _stdlib_text(raw: bytes, ctype: str) -> str | None:
    msg = email.message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == ctype and not part.is_attachment():
            assert isinstance(part, Message)
            return str(part.get_content())
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_text_parts_and_headers_match_the_stdlib(spec: Spec) -> None:
    raw = build(spec)
    mail = Mail(raw)
    for ctype, mine in (("text/plain", mail.text), ("text/html", mail.html)):
        theirs = _stdlib_text(raw, ctype)
        assert (mine is None) == (theirs is None), ctype
        if mine is not None and theirs is not None:
            assert text_to_lines(mine) == text_to_lines(theirs), ctype
    assert mail.subject == (clean_text(spec.subject) or "")
    assert mail.sender == "buyershelp+enq@indiamart.com"
    assert mail.message_id == "abc.123@mail.indiamart.com"


@given(_TEXT, _CHARSETS)
def test_encoded_words_decode_like_the_stdlib(text: str, charset: str) -> None:
    """Latin-1's C1 range is left out: the parser reads it as Windows-1252, on purpose."""
    text = _encodable(text, charset)
    encoded = make_header([(text.encode(charset), charset)]).encode(maxlinelen=40)
    expected = str(make_header(decode_header(encoded)))
    assert " ".join(decode_words(encoded).split()) == " ".join(expected.split())


def test_hand_written_structures_the_stdlib_also_tolerates() -> None:
    raw = (
        b"From: IndiaMART <buyleads@indiamart.com>\r\n"
        b"Subject: =?utf-8?q?Buyer_Details_for_?= =?utf-8?b?4oCcQnJpY2tz4oCd?=\r\n"
        b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nplain one\r\n"
        b"--b1x\r\nnot a delimiter: a longer boundary\r\n"
        b"--b1  \r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"PHA+aHRtbCB0d288L3A+\r\n"  # no closing delimiter at all
    )
    mail = Mail(raw)
    assert mail.subject == "Buyer Details for “Bricks”"
    assert mail.text == "plain one\r\n--b1x\r\nnot a delimiter: a longer boundary"
    assert mail.html == "<p>html two</p>"
    theirs = email.message_from_bytes(raw, policy=policy.default)
    assert theirs["Subject"] == mail.subject


def test_lenient_base64() -> None:
    assert decode_base64(b"aGVsbG8") == b"hello"  # padding missing
    assert decode_base64(b"aGV s\nbG8=") == b"hello"
    assert decode_base64(b"a") == b""
    assert decode_base64(b"!!!!") == b""


def test_an_email_is_shown_decoded_for_a_person_to_read() -> None:
    from leadtui.parser import readable_email

    msg = EmailMessage()
    msg["From"] = "IndiaMART <buyleads@indiamart.com>"
    msg["Subject"] = "BuyLead for जाली ईंट"
    msg["Date"] = "Wed, 25 Nov 2026 10:04:11 +0530"
    msg.set_content("Buy Lead through IndiaMART\nQuantity: 5000 Piece\n", cte="base64")
    shown = readable_email(msg.as_bytes())
    assert shown.splitlines()[:3] == [
        "From: IndiaMART <buyleads@indiamart.com>",
        "Date: Wed, 25 Nov 2026 10:04:11 +0530",
        "Subject: BuyLead for जाली ईंट",
    ]
    assert "Quantity: 5000 Piece" in shown.splitlines()
    assert "QnV5" not in shown  # not the base64 source


@given(st.binary(max_size=2000))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_showing_any_bytes_as_an_email_never_raises(data: bytes) -> None:
    from leadtui.parser import readable_email

    assert isinstance(readable_email(data), str)
