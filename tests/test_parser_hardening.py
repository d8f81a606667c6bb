"""Messy and forged mail: each case the parser once lost, garbled, crashed on or let through.

Every test here failed before the fix it guards (the issue's examples, one test each).
Mails are built here or read from ``tests/fixtures/mail/``, written for this project.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_parser_email import ENQ, Enquiry, make_email, parse_one

from leadtui.formats.authentication import forged
from leadtui.formats.html import html_to_lines
from leadtui.formats.mime import Mail, decode_bytes, decode_words
from leadtui.parser import parse, parse_json_bytes

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = FIXTURES / "samples"
MAIL = FIXTURES / "mail"


def _sample(name: str) -> bytes:
    return (SAMPLES / "email" / f"{name}.eml").read_bytes()


def _expected(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((SAMPLES / "expected" / f"{name}.json").read_text())
    return loaded


# ---------------------------------------------------------------- the header block


def test_a_whitespace_line_in_place_of_the_blank_line_ends_the_headers() -> None:
    raw = make_email(html=Enquiry().html(), crlf=True)
    head, _, body = raw.partition(b"\r\n\r\n")
    lead = parse_one(head + b"\r\n \t \r\n" + body)
    assert lead["kind"] == "lead"
    assert lead["name"] == "Sunil Rao"


def test_a_missing_blank_line_does_not_swallow_the_body() -> None:
    """As in the stdlib: the first line that is not a header starts the body."""
    text = "\n".join(line for line in Enquiry().text().splitlines() if line)
    raw = (
        f"From: {ENQ}\nSubject: Enquiry for Fly Ash Bricks from Sunil via IndiaMART\n"
        "Reply-To: Sunil Rao <sunil.rao.8b6cb9@reply.indiamart.com>\n"
        "Content-Type: text/plain; charset=utf-8\n"
    ).encode() + text.encode()
    lead = parse_one(raw)
    assert (lead["kind"], lead["name"], lead["phone"]) == ("lead", "Sunil Rao", "+919845600066")
    assert (
        lead["message"]
        == "I am looking for Fly Ash Bricks.\nPlease share your best price with delivery."
    )


def test_a_byte_order_mark_before_the_first_header_keeps_that_header() -> None:
    raw = b"\xef\xbb\xbf" + make_email(
        html=Enquiry().html(), date="Tue, 03 Mar 2026 09:00:00 +0530"
    )
    mail = Mail(raw)
    assert mail.headers["date"] == "Tue, 03 Mar 2026 09:00:00 +0530"
    assert parse_one(raw)["received_at"] == "2026-03-03T09:00:00+05:30"


# ---------------------------------------------------------------- RFC 2231 parameters


def test_rfc2231_boundary_and_charset_are_decoded() -> None:
    lead = parse_one((MAIL / "rfc2231-parameters.eml").read_bytes())
    assert lead["kind"] == "lead"
    assert lead["name"] == "Noël Fernandes"
    assert lead["message"] == "I am looking for Terracotta Jaali."


def test_rfc2231_continuations_join_in_order() -> None:
    mail = Mail(
        b"From: x@indiamart.com\n"
        b'Content-Type: multipart/alternative; boundary*1="-part-two";\n'
        b" boundary*0*=us-ascii'en'one%2Dtwo\n\n"
        b"--one-two-part-two\nContent-Type: text/plain; charset*=iso-8859-1''\n\n"
        b"caf\xe9\n--one-two-part-two--\n"
    )
    assert mail.text == "café"


# ---------------------------------------------------------------- charsets


def test_one_bad_byte_costs_one_character_not_the_part() -> None:
    """The Devanagari sample with one stray ``=FF`` in its HTML part reads as before."""
    raw = _sample("03-direct-enquiry-rfc2047-devanagari-name").replace(
        b"<title>Buyer Enquiry</title>", b"<title>Buyer Enquiry=FF</title>"
    )
    assert raw.count(b"=FF</title>") == 1
    assert parse(raw) == _expected("03-direct-enquiry-rfc2047-devanagari-name")


@pytest.mark.parametrize(
    ("charset", "codec"), [("gb2312", "gb18030"), ("big5", "big5"), ("utf-8", "utf-8")]
)
def test_bad_sequences_are_replaced_one_by_one(charset: str, codec: str) -> None:
    good = "买家 Ravi" if codec != "big5" else "買家 Ravi"
    data = good.encode(codec) + b"\xff" + "询价".encode(codec if codec != "big5" else "utf-8")
    decoded = decode_bytes(data, charset)
    assert decoded.startswith(good + "\ufffd")
    assert "Ã" not in decoded
    assert "ä¹" not in decoded


def test_gb2312_is_read_as_gb18030() -> None:
    """Mail labelled GB2312 routinely holds GBK/GB18030 characters (here 镕, outside GB2312)."""
    assert decode_bytes("朱镕基".encode("gb18030"), "gb2312") == "朱镕基"


@pytest.mark.parametrize(
    ("charset", "text", "codec"),
    [("x-mac-cyrillic", "Покупатель", "mac-cyrillic"), ("iso-8859-8-i", "קונה", "iso-8859-8")],
)
def test_charsets_python_lacks_map_to_their_nearest_codec(
    charset: str, text: str, codec: str
) -> None:
    assert decode_bytes(text.encode(codec), charset) == text


@pytest.mark.parametrize(
    "charset",
    ["unicode_escape", "raw_unicode_escape", "rot13", "base64", "zlib", "hex", "uu", "idna"],
)
def test_a_codec_that_is_not_a_charset_is_not_used(charset: str) -> None:
    html = Enquiry(name="Ravi \\ud83d Kumar").html().encode()
    raw = make_email(html=html, charset=charset, cte="8bit")
    lead = parse_one(raw)
    assert lead["name"] == "Ravi \\ud83d Kumar"  # the text as written, not an escape
    json.dumps(lead, ensure_ascii=False).encode("utf-8")  # what `leadtui parse` prints


def test_leadtui_parse_survives_a_unicode_escape_charset(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from leadtui.cli import main

    mail = tmp_path / "escape.eml"
    html = Enquiry(name="Ravi \\udc80").html().encode()
    mail.write_bytes(make_email(html=html, charset="unicode_escape", cte="8bit"))
    result = CliRunner().invoke(main, ["parse", "--json", str(mail)])
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    assert json.loads(result.output)["name"] == "Ravi \\udc80"


# ---------------------------------------------------------------- encoded words


def test_raw_8bit_text_inside_an_encoded_word_is_kept() -> None:
    raw = (
        b"From: " + ENQ.encode() + b"\nSubject: =?utf-8?q?Enquiry_for_Fr\xc3\xa4sche_Ziegel?= from"
        b" Sunil via IndiaMART\n\nx\n"
    )
    assert Mail(raw).subject == "Enquiry for Fräsche Ziegel from Sunil via IndiaMART"


def test_an_encoded_word_without_a_charset_is_decoded() -> None:
    assert decode_words("=??Q?Buyer_Details_for_Bricks?=") == "Buyer Details for Bricks"


# ---------------------------------------------------------------- HTML


def test_an_open_hidden_paragraph_ends_at_the_next_paragraph() -> None:
    assert html_to_lines('<p style="display:none">pre<p>Buyer: Ravi</p>') == ["Buyer: Ravi"]


@pytest.mark.parametrize(
    "markup",
    [
        '<table><tr><td style="display:none">pre<td>Buyer: Ravi</td></tr></table>',
        '<ul><li style="display:none">pre<li>Buyer: Ravi</li></ul>',
        '<div><p style="display:none">pre</div><div>Buyer: Ravi</div>',
    ],
)
def test_other_open_hidden_elements_end_where_a_browser_ends_them(markup: str) -> None:
    assert html_to_lines(markup) == ["Buyer: Ravi"]


def test_only_the_style_attribute_hides() -> None:
    assert html_to_lines('<p class="display:none" title="display: none">Buyer: Ravi</p>') == [
        "Buyer: Ravi"
    ]


def test_a_closing_bracket_inside_an_attribute_value_stays_markup() -> None:
    markup = "<a href=\"https://x.example/?q=a>b\" title='1 > 0'>Buyer: Ravi</a>"
    assert html_to_lines(markup) == ["Buyer: Ravi"]


def test_text_before_body_is_shown() -> None:
    markup = "<html><head><title>t</title></head>Dear Ravi Kumar,<body><p>Buyer: Ravi</p></body>"
    assert html_to_lines(markup) == ["Dear Ravi Kumar,", "Buyer: Ravi"]


def test_an_abruptly_closed_comment_hides_nothing() -> None:
    assert html_to_lines("<!-->Buyer: Ravi<p>Phone</p><!--->x<!-- real -->") == [
        "Buyer: Ravi",
        "Phone",
        "x",
    ]


def test_a_tag_cut_off_at_the_end_is_not_text() -> None:
    assert html_to_lines('<p>Buyer: Ravi</p><img src="https://x.example/p') == ["Buyer: Ravi"]


@pytest.mark.parametrize("tag", ["legend", "option", "summary"])
def test_more_block_elements_end_a_line(tag: str) -> None:
    assert html_to_lines(f"<div><{tag}>Buyer</{tag}>Ravi</div>") == ["Buyer", "Ravi"]


# ---------------------------------------------------------------- lone surrogates


def test_a_lone_surrogate_in_a_json_lead_becomes_a_replacement_character() -> None:
    body = (
        b'{"source": "website", "name": "Ravi \\ud83d", "phone": "9845600066",'
        b' "message": "Need bricks \\ud83d\\n\\udc4d soon", "received_at": "2026-03-02T11:17:14+05:30"}'
    )
    (lead,) = parse_json_bytes(body)
    assert lead["kind"] == "lead"
    assert lead["name"] == "Ravi \ufffd"
    assert lead["message"] == "Need bricks \ufffd\n\ufffd soon"
    json.dumps(lead, ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------- forged senders

GMAIL_FAIL = (
    "mx.google.com;\n"
    "       dkim=fail header.i=@indiamart.com header.s=s1 header.b=AbCd;\n"
    "       spf=softfail (google.com: domain of transitioning buyershelp@indiamart.com does"
    " not designate 203.0.113.9 as permitted sender) smtp.mailfrom=buyershelp@indiamart.com;\n"
    "       dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=indiamart.com"
)
GMAIL_PASS = (
    "mx.google.com;\n       dkim=pass header.i=@indiamart.com header.s=s1 header.b=AbCd;\n"
    "       spf=pass smtp.mailfrom=buyershelp@indiamart.com;\n"
    "       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=indiamart.com"
)


def _with_headers(raw: bytes, *headers: str) -> bytes:
    return "".join(f"{header}\n" for header in headers).encode() + raw


def test_mail_the_receiving_server_says_is_forged_goes_to_review() -> None:
    raw = _with_headers(make_email(html=Enquiry().html()), f"Authentication-Results: {GMAIL_FAIL}")
    (result,) = parse(raw)
    assert result["kind"] == "error"
    assert "dkim=fail and dmarc=fail" in result["error"]
    assert "indiamart.com" in result["error"]


def test_a_forged_verdict_below_the_servers_own_is_not_believed() -> None:
    """The sender can add Authentication-Results too, but only below the server's."""
    raw = make_email(html=Enquiry().html())
    forged_pass = f"Authentication-Results: {GMAIL_PASS}"
    server_fail = f"Authentication-Results: {GMAIL_FAIL}"
    assert parse(_with_headers(raw, server_fail, forged_pass))[0]["kind"] == "error"
    server_pass, forged_fail = forged_pass, server_fail
    assert parse(_with_headers(raw, server_pass, forged_fail))[0]["kind"] == "lead"


def test_without_the_header_mail_is_read_as_before() -> None:
    assert parse_one(make_email(html=Enquiry().html()))["kind"] == "lead"


def test_forged_tradeindia_mail_goes_to_review() -> None:
    raw = _sample("13-tradeindia-inquiry")
    header = (
        "Authentication-Results: mx.google.com; dkim=none; spf=fail"
        " smtp.mailfrom=rfis.tradeindia.com; dmarc=fail header.from=rfis.tradeindia.com"
    )
    assert parse(_with_headers(raw, header))[0]["kind"] == "error"
    assert parse(raw) == _expected("13-tradeindia-inquiry")


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (GMAIL_FAIL, True),
        (GMAIL_PASS, False),
        (
            "mx.google.com; dkim=pass header.d=indiamart.com; dmarc=fail header.from=indiamart.com",
            False,
        ),
        ("mx.google.com; dkim=pass header.d=mailer.example; dmarc=fail", True),
        ("mx.google.com; dkim=fail header.d=indiamart.com; dmarc=pass", False),
        ("mx.google.com; dmarc=fail header.from=example.org", False),  # not about this domain
        ("mx.google.com; none", False),
        ("", False),
    ],
)
def test_the_verdict(header: str, verdict: bool) -> None:
    assert (forged(header, "indiamart.com") is not None) is verdict


def test_a_lead_nobody_can_answer_goes_to_review() -> None:
    enquiry = Enquiry(phone_line=None, email_line="Email: Not Provided")
    raw = make_email(html=enquiry.html().replace("call+91-9845600066", "call"), reply_to=None)
    (result,) = parse(raw)
    assert result["kind"] == "error"
    assert "no way to reach the buyer" in result["error"]


def test_the_reply_relay_is_a_way_to_reach_the_buyer() -> None:
    """Sample 16 (a masked number, no email) stays a lead: its Reply-To relay answers."""
    assert parse(_sample("16-masked-number-enquiry")) == _expected("16-masked-number-enquiry")
    raw = _sample("16-masked-number-enquiry")
    no_relay = b"\n".join(
        line for line in raw.split(b"\n") if not line.lower().startswith(b"reply-to:")
    )
    assert parse(no_relay)[0]["kind"] == "error"
