"""Email families beyond the samples: every variation FORMATS 3 and 4 describe.

The mails are built here, in markup deliberately unlike the samples' (``<p>`` and
``<br>`` blocks, ``<th>`` label cells, inline rows, other wrappers and encodings), so a
parser that matched the samples' exact HTML would fail these.
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass, field, replace
from html import escape
from typing import Any

import pytest
from test_parser_contract import assert_contract

from leadtui.parser import parse

ENQ = "IndiaMART <buyershelp+enq@indiamart.com>"
DATE = "Mon, 02 Mar 2026 10:41:07 +0530"

# ---------------------------------------------------------------- building mails


def _encode(body: str | bytes, charset: str | None, cte: str) -> bytes:
    data = body if isinstance(body, bytes) else body.encode(charset or "utf-8")
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":
        return quopri.encodestring(data)
    return data


def _part(ctype: str, body: str | bytes, charset: str | None, cte: str) -> bytes:
    declared = f'; charset="{charset}"' if charset else ""
    head = f"Content-Type: {ctype}{declared}\nContent-Transfer-Encoding: {cte}\n\n"
    return head.encode() + _encode(body, charset, cte)


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> bytes:
    out = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\npreamble\n'.encode()
    for part in parts:
        out += f"--{boundary}\n".encode() + part + b"\n"
    return out + f"--{boundary}--\nepilogue\n".encode()


def make_email(
    *,
    html: str | None = None,
    text: str | bytes | None = None,
    sender: str = ENQ,
    subject: str = "Enquiry for Fly Ash Bricks from Sunil via IndiaMART",
    charset: str | None = "utf-8",
    cte: str = "quoted-printable",
    wrap: str | None = None,
    date: str = DATE,
    message_id: str = "<t1.abc@mail.indiamart.com>",
    reply_to: str | None = "Sunil Rao <sunil.rao.8b6cb9@reply.indiamart.com>",
    crlf: bool = False,
) -> bytes:
    """An RFC 822 mail: HTML and/or text parts, optionally wrapped with an attachment."""
    parts = []
    if text is not None:
        parts.append(_part("text/plain", text, charset, cte))
    if html is not None:
        parts.append(_part("text/html", html, charset, cte))
    body = parts[0] if len(parts) == 1 else _multipart("alternative", "alt-b0und", parts)
    if wrap is not None:
        image = (
            b"Content-Type: image/png\nContent-Transfer-Encoding: base64\n"
            b"Content-Disposition: inline; filename=logo.png\n\n"
            + base64.encodebytes(b"\x89PNG" * 50)
        )
        body = _multipart(wrap, "outer-b0und", [body, image])
    headers = f"Date: {date}\nFrom: {sender}\nTo: Ravi Kumar <ravi@kumarclay.example.in>\n"
    if reply_to:
        headers += f"Reply-To: {reply_to}\n"
    headers += f"Subject: {subject}\nMessage-ID: {message_id}\nMIME-Version: 1.0\n"
    raw = headers.encode() + body
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") if crlf else raw


def parse_one(raw: bytes) -> dict[str, Any]:
    results = parse(raw)
    assert len(results) == 1, "an email gives exactly one result"
    assert_contract(results[0])
    return results[0]


def pick(result: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: result[key] for key in keys}


# ---------------------------------------------------------------- direct enquiries (W)


@dataclass
class Enquiry:
    """The content of a direct enquiry; rendered to HTML or text in several layouts."""

    sentence: str = "I am looking for {}."
    product: str = "Fly Ash Bricks"
    heading: str | None = "Below are the requirement details"
    rows: list[tuple[str, str]] = field(
        default_factory=lambda: [
            ("Quantity", "10000"),
            ("Quantity Unit", "Piece"),
            ("Probable Order Value", "Rs. 50,000 to 1 Lakh"),
            ("Grade", "First Class"),
        ]
    )
    free: list[str] = field(default_factory=lambda: ["Please share your best price with delivery."])
    name: str = "Sunil Rao"
    company: str | None = "Rao Constructions (GST verified by IndiaMART)"
    phone_line: str | None = "Click to call: +91-9845600066 (verified)"
    email_line: str | None = "Email: sunil.rao@example.com (verified)"
    location: str | None = "Mysuru, Karnataka"
    footer: list[str] = field(
        default_factory=lambda: ["Interested Products: Bricks", "Member since: Jul, 2020"]
    )

    def block(self) -> list[str]:
        lines = [self.name, self.company, self.phone_line, self.email_line, self.location]
        return [line for line in lines if line is not None]

    def html(self, rows: str = "table") -> str:
        """A layout unlike the samples': <p> blocks, <th> labels or inline rows, <br> block."""
        sentence = escape(self.sentence).replace("{}", f"<strong>{escape(self.product)}</strong>")
        if rows == "table":
            body = "".join(
                f"<tr><th align=left>{escape(k)}</th><td>:</td><td><span>{escape(v)}</span></td></tr>"
                for k, v in self.rows
            )
            table = f"<table class=req><tbody>{body}</tbody></table>"
        else:
            table = "".join(f"<div>{escape(k)} : {escape(v)}</div>" for k, v in self.rows)
        block = "<br/>\n".join(escape(line) for line in self.block())
        heading = f"<h3>{escape(self.heading)}</h3>" if self.heading else ""
        footer = "".join(f"<li>{escape(line)}</li>" for line in self.footer)
        return (
            "<html><head><style>p{margin:0}</style><title>Enquiry</title></head><body>"
            '<span style="display: none !important">preheader: Regards, nobody</span>'
            "<table><tr><td><p>Dear Ravi Kumar,</p>"
            f"<p>{sentence}</p>{heading}{table}"
            + "".join(f"<p>{escape(line)}</p>" for line in self.free)
            + f"<p>Regards,</p><p>{block}</p>"
            '<p><a href="https://m.indiamart.example/call+91-9845600066">Call Now</a>'
            ' <a href="https://seller.indiamart.example/reply">Reply</a></p>'
            f"<div><b>Additional details about me:</b><ul>{footer}</ul></div>"
            "</td></tr></table><!-- tracking --><img src=x.gif></body></html>"
        )

    def text(self, rows: str = "one-line") -> str:
        """The text part: ``Label : value`` rows or three-line rows, space before the stop."""
        sentence = self.sentence.format(self.product)
        sentence = sentence[:-1] + " ." if sentence.endswith(".") else sentence
        lines = ["Dear Ravi Kumar,", "", sentence, ""]
        if self.heading:
            lines.append("Below are my requirements:")
        for label, value in self.rows:
            lines += [label, ":", value] if rows == "three-line" else [f"{label} : {value}"]
        lines += ["", *self.free, "", "Regards,", *self.block(), "", "Call Now", "Reply", "--"]
        lines += ["You are receiving this email because you are a registered seller on IndiaMART."]
        return "\n".join(lines)


EXPECTED_W = {
    "kind": "lead",
    "source": "indiamart",
    "channel": "email",
    "external_id": None,
    "query_type": "W",
    "received_at": "2026-03-02T10:41:07+05:30",
    "name": "Sunil Rao",
    "company": "Rao Constructions",
    "phone": "+919845600066",
    "phone_alt": None,
    "email": "sunil.rao@example.com",
    "email_alt": None,
    "address": None,
    "city": "Mysuru",
    "state": "Karnataka",
    "pincode": None,
    "country": "IN",
    "product": "Fly Ash Bricks",
    "category": None,
    "quantity": "10000",
    "unit": "Piece",
    "order_value": "Rs. 50,000 to 1 Lakh",
    "requirement_type": None,
    "message": "I am looking for Fly Ash Bricks.\nPlease share your best price with delivery.",
    "specs": {"Grade": "First Class"},
    "call_duration": None,
    "receiver_phone": None,
    "message_id": "t1.abc@mail.indiamart.com",
    "verified": ["phone", "email", "gst"],
    "member_since": None,
}


@pytest.mark.parametrize(
    "raw",
    [
        make_email(html=Enquiry().html("table"), text=Enquiry().text()),
        make_email(html=Enquiry().html("inline")),
        make_email(text=Enquiry().text("one-line")),
        make_email(text=Enquiry().text("three-line"), cte="8bit"),
        make_email(html=Enquiry().html("table"), cte="base64", crlf=True),
    ],
    ids=[
        "html-table+text",
        "html-inline-rows",
        "text-one-line-rows",
        "text-three-line-rows",
        "base64-crlf",
    ],
)
def test_every_layout_of_an_enquiry_gives_the_same_lead(raw: bytes) -> None:
    lead = parse_one(raw)
    member_since = lead.pop("member_since")
    assert lead == {k: v for k, v in EXPECTED_W.items() if k != "member_since"}
    assert member_since in ("Jul, 2020", None)  # the text part has no "about me" footer


def test_html_footer_gives_member_since_and_nothing_else() -> None:
    lead = parse_one(make_email(html=Enquiry().html()))
    assert lead["member_since"] == "Jul, 2020"
    assert "Interested Products" not in lead["specs"]
    assert "Bricks" not in (lead["message"] or "").split("\n")[-1]


def test_label_case_and_spacing_do_not_matter() -> None:
    rows = [
        ("QUANTITY", "500"),
        ("quantity   unit", "Kilogram"),
        ("Probable order value", "Rs. 10,000 - 20,000"),
        ("PROBABLE REQUIREMENT TYPE", "Personal Use"),
        ("Usage/Application", "Home"),
    ]
    for raw in (
        make_email(html=Enquiry(rows=rows).html()),
        make_email(text=Enquiry(rows=rows).text().replace(" : ", "   :   ")),
    ):
        lead = parse_one(raw)
        assert pick(lead, "quantity", "unit", "order_value", "requirement_type", "specs") == {
            "quantity": "500",
            "unit": "Kilogram",
            "order_value": "Rs. 10,000 - 20,000",
            "requirement_type": "Personal Use",
            "specs": {"Usage/Application": "Home"},
        }


@pytest.mark.parametrize("sentence", ["I need {}.", "I am looking for {}.", "I want to buy {}."])
def test_product_sentence_wordings(sentence: str) -> None:
    enquiry = Enquiry(sentence=sentence, product="M.S. Pipe 2 inch")
    for raw in (make_email(html=enquiry.html()), make_email(text=enquiry.text())):
        lead = parse_one(raw)
        assert lead["product"] == "M.S. Pipe 2 inch"
        assert lead["message"].split("\n")[0] == sentence.format("M.S. Pipe 2 inch")


def test_buyer_signing_off_with_regards_in_the_message() -> None:
    enquiry = Enquiry(free=["Please quote soon.", "Regards,", "Sunil"])
    for raw in (make_email(html=enquiry.html()), make_email(text=enquiry.text())):
        lead = parse_one(raw)
        assert pick(lead, "name", "company", "phone") == {
            "name": "Sunil Rao",
            "company": "Rao Constructions",
            "phone": "+919845600066",
        }
        assert lead["message"].endswith("Please quote soon.\nRegards,\nSunil")


def test_a_heading_cell_that_looks_like_a_greeting_is_not_one() -> None:
    html = (
        Enquiry()
        .html()
        .replace("<table><tr><td>", "<table><tr><td><p>Hi-Tech Bricks. Welcome.</p>")
    )
    assert parse_one(make_email(html=html))["message"].startswith(
        "I am looking for Fly Ash Bricks."
    )


def test_no_heading_and_no_free_text() -> None:
    lead = parse_one(make_email(text=Enquiry(heading=None, free=[]).text()))
    assert lead["message"] == "I am looking for Fly Ash Bricks."
    assert lead["quantity"] == "10000"


def test_individual_buyer_without_company_line() -> None:
    for raw in (
        make_email(html=Enquiry(company=None).html()),
        make_email(text=Enquiry(company=None).text()),
    ):
        lead = parse_one(raw)
        assert pick(lead, "name", "company", "phone", "city", "verified") == {
            "name": "Sunil Rao",
            "company": None,
            "phone": "+919845600066",
            "city": "Mysuru",
            "verified": ["phone", "email"],
        }


def test_missing_email_line_still_reads_the_location() -> None:
    lead = parse_one(make_email(html=Enquiry(email_line=None).html()))
    assert pick(lead, "email", "city", "state", "verified") == {
        "email": None,
        "city": "Mysuru",
        "state": "Karnataka",
        "verified": ["phone", "gst"],
    }


def test_label_casings_of_phone_and_email_lines() -> None:
    enquiry = Enquiry(
        phone_line="Click To Call: +91-9845600066",
        email_line="EMAIL: Sunil.Rao@Example.COM",
        location="Kochi - 682016, Kerala",
    )
    lead = parse_one(make_email(html=enquiry.html()))
    assert pick(lead, "phone", "email", "city", "pincode", "state", "verified") == {
        "phone": "+919845600066",
        "email": "sunil.rao@example.com",
        "city": "Kochi",
        "pincode": "682016",
        "state": "Kerala",
        "verified": ["gst"],
    }


def test_phone_number_and_email_on_the_line_after_their_label() -> None:
    enquiry = Enquiry(
        phone_line="Click to call:\n+91-9845600066", email_line="Email:\nNot Provided"
    )
    lead = parse_one(make_email(text=enquiry.text()))
    assert pick(lead, "phone", "email", "city") == {
        "phone": "+919845600066",
        "email": None,
        "city": "Mysuru",
    }


@pytest.mark.parametrize(
    ("written", "phone"),
    [
        ("011-41234567", "+911141234567"),  # landline with STD code
        ("+1-512-555-0148", "+15125550148"),
        ("00971-501234567", "+971501234567"),
        ("09731045682 (verified)", "+919731045682"),
        ("+91-98XXXXXX01", None),  # masked
    ],
)
def test_phone_written_any_way(written: str, phone: str | None) -> None:
    lead = parse_one(make_email(html=Enquiry(phone_line=f"Click to call: {written}").html()))
    assert lead["phone"] == phone
    assert lead["name"] == "Sunil Rao"  # the rest of the lead is still read


def test_two_numbers_give_phone_and_phone_alt() -> None:
    enquiry = Enquiry(phone_line="Click to call: +91-9845600066, +91-9845600067")
    lead = parse_one(make_email(html=enquiry.html()))
    assert (lead["phone"], lead["phone_alt"]) == ("+919845600066", "+919845600067")


@pytest.mark.parametrize("wrap", ["related", "mixed"])
def test_wrapped_in_related_or_mixed(wrap: str) -> None:
    lead = parse_one(make_email(html=Enquiry().html(), text=Enquiry().text(), wrap=wrap))
    assert pick(lead, "name", "product", "quantity") == {
        "name": "Sunil Rao",
        "product": "Fly Ash Bricks",
        "quantity": "10000",
    }


def test_html_part_is_authoritative_over_the_text_part() -> None:
    raw = make_email(
        html=Enquiry().html(), text=Enquiry(name="Someone Else", product="Other").text()
    )
    assert pick(parse_one(raw), "name", "product") == {
        "name": "Sunil Rao",
        "product": "Fly Ash Bricks",
    }


def test_text_part_is_used_when_the_html_part_cannot_be_read() -> None:
    raw = make_email(
        html="<html><body><p>View this mail in a browser.</p></body></html>", text=Enquiry().text()
    )
    assert parse_one(raw)["name"] == "Sunil Rao"


# ---------------------------------------------------------------- charsets and headers


def test_windows_1252_body() -> None:
    enquiry = Enquiry(name="Noël D’Souza", free=["Need “first class” bricks – urgent."])
    lead = parse_one(make_email(html=enquiry.html(), charset="windows-1252"))
    assert lead["name"] == "Noël D’Souza"
    assert lead["message"].endswith("Need “first class” bricks – urgent.")


def test_iso_8859_1_body_with_windows_quotes() -> None:
    html = Enquiry(name="José D’Silva").html().encode("cp1252")  # what mislabelled mailers send
    lead = parse_one(make_email(html=html, charset="iso-8859-1"))
    assert lead["name"] == "José D’Silva"


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_undeclared_8bit_body_is_utf8_then_windows_1252(encoding: str) -> None:
    text = Enquiry(name="Noël Fernandes").text().encode(encoding)
    lead = parse_one(make_email(text=text, charset=None, cte="8bit"))
    assert lead["name"] == "Noël Fernandes"


def test_unknown_charset_name_falls_back_instead_of_failing() -> None:
    raw = make_email(html=Enquiry(name="Noël Rao").html().encode(), charset="x-no-such-charset")
    assert parse_one(raw)["name"] == "Noël Rao"


def test_folded_and_encoded_subject() -> None:
    subject = "=?UTF-8?Q?Enquiry_for_Fly_Ash_Bricks_?=\n =?UTF-8?B?ZnJvbSDgpLDgpL7gpJzgpYfgpLYgdmlhIEluZGlhTUFSVA==?="
    lead = parse_one(make_email(html=Enquiry().html(), subject=subject))
    assert lead["query_type"] == "W"
    assert lead["product"] == "Fly Ash Bricks"


def test_folded_phone_subject_gives_the_call_time() -> None:
    subject = "Clay Roof Tiles Enquiry by Phone\n\ton 05-MAR-2026 at 12:05 AM"
    lead = parse_one(make_email(text=Enquiry(product="Clay Roof Tiles").text(), subject=subject))
    assert pick(lead, "query_type", "received_at") == {
        "query_type": "P",
        "received_at": "2026-03-05T00:05:00+05:30",
    }


def test_truncated_subject_loses_to_the_body_product() -> None:
    enquiry = Enquiry(product="Hydraulic Scissor Lift Table")
    raw = make_email(html=enquiry.html(), subject="Enquiry for Hydraulic Scissor Lift Tab")
    assert parse_one(raw)["product"] == "Hydraulic Scissor Lift Table"


def test_product_falls_back_to_the_subject_when_the_body_has_no_sentence() -> None:
    enquiry = Enquiry(sentence="Hello, please help.{}", product="")
    raw = make_email(
        html=enquiry.html(), subject="Enquiry for Paver Blocks from Sunil via IndiaMART"
    )
    assert parse_one(raw)["product"] == "Paver Blocks"


def test_date_offset_is_kept_and_message_id_loses_its_brackets() -> None:
    raw = make_email(
        html=Enquiry().html(), date="Mon, 02 Mar 2026 05:11:07 +0000", message_id=" <x@y> "
    )
    assert pick(parse_one(raw), "received_at", "message_id") == {
        "received_at": "2026-03-02T05:11:07+00:00",
        "message_id": "x@y",
    }


def test_name_falls_back_to_reply_to_when_the_block_starts_with_the_phone() -> None:
    enquiry = Enquiry(name="Click to call: +91-9845600066", company=None, phone_line=None)
    raw = make_email(
        html=enquiry.html(), reply_to="=?utf-8?b?4KSw4KS+4KSc4KWH4KS2?= <r.1@reply.indiamart.com>"
    )
    lead = parse_one(raw)
    assert pick(lead, "name", "phone", "email") == {
        "name": "राजेश",
        "phone": "+919845600066",
        "email": "sunil.rao@example.com",
    }


# ---------------------------------------------------------------- export, phone, legacy


@pytest.mark.parametrize(
    ("location", "subject_country", "place"),
    [
        ("Dubai, United Arab Emirates", "United Arab Emirates", ("Dubai", None, "AE")),
        ("Austin, Texas, United States", "United States", ("Austin", "Texas", "US")),
        ("London, UK", "UK", ("London", None, "GB")),
        ("Lagos", "Nigeria", ("Lagos", None, "NG")),  # no country in the body: the subject's
    ],
)
def test_export_enquiry_country(
    location: str, subject_country: str, place: tuple[str | None, ...]
) -> None:
    enquiry = Enquiry(
        phone_line="Click to call: +971-501234567",
        email_line="Email: Not Provided",
        location=location,
    )
    subject = f"Export Enquiry for Fly Ash Bricks from Ahmed, {subject_country} via IndiaMART"
    lead = parse_one(
        make_email(html=enquiry.html(), subject=subject, date="Wed, 04 Mar 2026 12:57:10 +0000")
    )
    assert (lead["city"], lead["state"], lead["country"]) == place
    assert pick(lead, "query_type", "phone", "email", "received_at") == {
        "query_type": "W",
        "phone": "+971501234567",
        "email": None,
        "received_at": "2026-03-04T12:57:10+00:00",
    }


def test_phone_enquiry_from_call_support() -> None:
    raw = make_email(
        text=Enquiry(product="Paver Blocks").text("three-line"),
        sender="IndiaMART <call-support@indiamart.com>",
        subject="Paver Blocks Enquiry by Phone on 07-Mar-2026 at 12:30 PM",
        reply_to=None,
    )
    lead = parse_one(raw)
    assert pick(
        lead, "query_type", "received_at", "product", "call_duration", "receiver_phone"
    ) == {
        "query_type": "P",
        "received_at": "2026-03-07T12:30:00+05:30",
        "product": "Paver Blocks",
        "call_duration": None,
        "receiver_phone": None,
    }


def test_phone_enquiry_with_a_truncated_time_uses_the_date_header() -> None:
    raw = make_email(text=Enquiry().text(), subject="Fly Ash Bricks Enquiry by Phone on 05-MAR-20")
    lead = parse_one(raw)
    assert (lead["query_type"], lead["received_at"]) == ("P", "2026-03-02T10:41:07+05:30")


def test_legacy_sender_text_only() -> None:
    raw = make_email(
        text=Enquiry().text(),
        sender='"IndiaMART.com" <buyershelpdesk@indiamart.com>',
        charset="iso-8859-1",
        cte="7bit",
    )
    assert pick(parse_one(raw), "query_type", "name", "quantity") == {
        "query_type": "W",
        "name": "Sunil Rao",
        "quantity": "10000",
    }


def test_reworded_subject_from_the_enquiry_sender_is_read_from_the_body() -> None:
    raw = make_email(html=Enquiry().html(), subject="New buyer requirement: Fly Ash Bricks")
    lead = parse_one(raw)
    assert (lead["kind"], lead["query_type"], lead["name"]) == ("lead", "W", "Sunil Rao")


# ---------------------------------------------------------------- BuyLeads (B)

BUYLEAD = "IndiaMART <buyleads@indiamart.com>"


def buylead_text(
    identity: list[str],
    specs: list[str],
    *,
    ticks: str | None = "Phone ✓ Email ✓ GST ✓",
    details: list[str] | None = None,
    phone: list[str] | None = None,
) -> str:
    lines = ["Buy Lead through IndiaMART", "Buyer's Contact Details:"]
    lines += [ticks] if ticks else []
    lines += identity
    lines += phone if phone is not None else ["Click to call: +91-9009800088"]
    lines += ["E-mail: deepak.sharma@example.in", "Member Since: 3 years", "Sells: Cement, Sand"]
    lines += details if details is not None else ["Buylead Details:", "Perforated Bricks"]
    lines += [
        *specs,
        "Reply To This Message",
        "IndiaMART recommends that you verify the buyer.",
        "Regards,",
    ]
    return "\n".join(lines)


def test_buylead_html_spec_table_in_new_markup() -> None:
    html = (
        "<html><body><h2>Buy Lead through IndiaMART</h2><p><b>Buyer&rsquo;s Contact Details:</b></p>"
        "<p>Phone <span>&#10003;</span>&nbsp;&nbsp;GST <span>&#x2713;</span></p>"
        "<p><b>KIRAN PATEL</b><br>Patel Steel Works, Rajkot, GJ<br>Click to Call: "
        "<a href='tel:+919825012345'>+91-9825012345</a><br>E-mail: <a>kiran@example.co.in</a></p>"
        "<p>Member Since: 11 months</p><p><b>Buylead Details:</b></p><h1>MS Window Grill</h1>"
        "<table><tr><td><strong>Material</strong></td><td>Iron</td></tr>"
        "<tr><td><strong>Quantity</strong></td><td>25 Piece</td></tr>"
        "<tr><td><strong>Probable Requirement Type</strong></td><td>Business Use</td></tr></table>"
        "<p><a href=#>Reply To This Message</a></p></body></html>"
    )
    raw = make_email(
        html=html, text="ignored text", sender=BUYLEAD, subject="Buyer Details for MS Window Grill"
    )
    lead = parse_one(raw)
    assert pick(
        lead, "query_type", "name", "company", "city", "state", "country", "phone", "email"
    ) == {
        "query_type": "B",
        "name": "Kiran Patel",
        "company": "Patel Steel Works",
        "city": "Rajkot",
        "state": "Gujarat",
        "country": "IN",
        "phone": "+919825012345",
        "email": "kiran@example.co.in",
    }
    assert pick(
        lead, "product", "quantity", "unit", "requirement_type", "specs", "verified", "member_since"
    ) == {
        "product": "MS Window Grill",
        "quantity": "25",
        "unit": "Piece",
        "requirement_type": "Business Use",
        "specs": {"Material": "Iron"},
        "verified": ["phone", "gst"],
        "member_since": "11 months",
    }
    assert lead["message"] is None


def test_buylead_alternating_spec_lines() -> None:
    text = buylead_text(
        ["DEEPAK SHARMA", "Sharma Infra, Indore - 452001, MP"],
        ["Material", "Clay", "Quantity", "8000 Piece", "Size", "9 Inch"],
    )
    lead = parse_one(
        make_email(text=text, sender=BUYLEAD, subject='Buyer Details for "Perforated Bricks"')
    )
    assert pick(
        lead, "name", "company", "city", "pincode", "state", "quantity", "unit", "specs"
    ) == {
        "name": "Deepak Sharma",
        "company": "Sharma Infra",
        "city": "Indore",
        "pincode": "452001",
        "state": "Madhya Pradesh",
        "quantity": "8000",
        "unit": "Piece",
        "specs": {"Material": "Clay", "Size": "9 Inch"},
    }


def test_buylead_one_line_specs_longest_label_first() -> None:
    text = buylead_text(
        ["DEEPAK SHARMA", "Sharma Infra, Indore - 452001, MP"],
        [
            "Quantity : 8000 Piece Type : Hollow Probable Requirement Type : Business Use Packaging Type : Pallet"
        ],
    )
    lead = parse_one(
        make_email(text=text, sender=BUYLEAD, subject="Buyer Details for Perforated Bricks")
    )
    assert pick(lead, "quantity", "unit", "requirement_type", "specs") == {
        "quantity": "8000",
        "unit": "Piece",
        "requirement_type": "Business Use",
        "specs": {"Type": "Hollow", "Packaging Type": "Pallet"},
    }


def test_buylead_merged_identity_and_product_on_the_details_line() -> None:
    text = buylead_text(
        ["SURESH REDDY, Reddy Tiles Mart, Hyderabad - 500072, TS"],
        ["Quantity : 1500 Square Feet"],
        ticks="Phone ✓",
        details=["Buylead Details: Vitrified Floor Tiles"],
    )
    lead = parse_one(make_email(text=text, sender=BUYLEAD, subject='Buyer Details for "Vitrified"'))
    assert pick(
        lead, "name", "company", "city", "pincode", "state", "product", "unit", "verified"
    ) == {
        "name": "Suresh Reddy",
        "company": "Reddy Tiles Mart",
        "city": "Hyderabad",
        "pincode": "500072",
        "state": "Telangana",
        "product": "Vitrified Floor Tiles",
        "unit": "Square Feet",
        "verified": ["phone"],
    }


@pytest.mark.parametrize(
    ("identity", "place"),
    [
        (["Anita Verma", "Raipur - 492001, CG"], (None, "Raipur", "492001", "Chhattisgarh")),
        (["ANITA VERMA, Bhubaneswar, OD"], (None, "Bhubaneswar", None, "Odisha")),
        (
            ["Anita Verma", "Verma & Sons, Pvt, Dehradun, UK"],
            ("Verma & Sons, Pvt", "Dehradun", None, "Uttarakhand"),
        ),
    ],
)
def test_buylead_individual_and_odd_identities(
    identity: list[str], place: tuple[str | None, ...]
) -> None:
    text = buylead_text(identity, ["Quantity : 10 Piece"], ticks=None)
    lead = parse_one(make_email(text=text, sender=BUYLEAD, subject="Buyer Details for Bricks"))
    assert lead["name"] == "Anita Verma"
    assert (lead["company"], lead["city"], lead["pincode"], lead["state"]) == place
    assert lead["verified"] == []


def test_buylead_number_on_the_next_line_and_product_from_the_subject() -> None:
    text = buylead_text(
        ["Kiran Patel", "Rajkot, GJ"],
        [],
        phone=["Click to call:", "+91-9825012345"],
        details=["Buylead Details:"],
    )
    lead = parse_one(
        make_email(text=text, sender=BUYLEAD, subject="Buyer Details for “MS Window Grill”")
    )
    assert pick(lead, "phone", "product") == {
        "phone": "+919825012345",
        "product": "MS Window Grill",
    }


def test_buylead_without_a_name_line_keeps_the_contacts() -> None:
    text = buylead_text([], ["Quantity : 10 Piece"], ticks="Phone ✓")
    lead = parse_one(make_email(text=text, sender=BUYLEAD, subject="Buyer Details for Bricks"))
    assert pick(lead, "name", "phone", "email", "quantity") == {
        "name": None,
        "phone": "+919009800088",
        "email": "deepak.sharma@example.in",
        "quantity": "10",
    }


def test_buylead_sender_with_another_subject_is_ignored() -> None:
    raw = make_email(
        html="<p>BuyLeads matching your products: Bricks, Tiles</p>",
        sender=BUYLEAD,
        subject="BuyLeads matching your products",
    )
    result = parse_one(raw)
    assert result["kind"] == "ignored"
    assert "not a purchased BuyLead" in result["reason"]


# ---------------------------------------------------------------- replies

REPLY_FROM = "IndiaMART <buyershelp+reply@indiamart.com>"


def reply_html(intro: str, messages: list[str], call: str) -> str:
    bubbles = "".join(f"<div class=bubble><p>{escape(m)}</p></div>" for m in messages)
    return (
        f"<html><body><p>Dear Ravi Kumar,</p><p>{intro}</p>{bubbles}"
        f"<p><a href='https://m.indiamart.example/call+91-9845600066'>{call}</a> <a>Chat</a> <a>Reply</a></p>"
        "<p>Regards,<br>Team IndiaMART</p></body></html>"
    )


@pytest.mark.parametrize(
    ("intro", "name", "company"),
    [
        (
            "You have 2 new messages from <b>SUNIL RAO</b>, Rao Constructions regarding <b>Fly Ash Bricks</b>",
            "Sunil Rao",
            "Rao Constructions",
        ),
        (
            "You have a new message from <b>Sunil Rao</b> regarding <b>Fly Ash Bricks</b>",
            "Sunil Rao",
            None,
        ),
    ],
)
def test_reply_with_and_without_company(intro: str, name: str, company: str | None) -> None:
    raw = make_email(
        html=reply_html(
            intro, ["Rate for 10000 pcs?", "Deliver by Friday?"], "Call +91-9845600066"
        ),
        sender=REPLY_FROM,
        subject="Ravi Kumar, 2 new messages for Fly Ash Bricks enquiry from Sunil via IndiaMART",
    )
    assert parse_one(raw) == {
        "kind": "reply",
        "source": "indiamart",
        "channel": "email",
        "name": name,
        "company": company,
        "product": "Fly Ash Bricks",
        "phone": "+919845600066",
        "email": None,
        "messages": ["Rate for 10000 pcs?", "Deliver by Friday?"],
        "received_at": "2026-03-02T10:41:07+05:30",
        "message_id": "t1.abc@mail.indiamart.com",
    }


def test_reply_phone_from_the_call_link_when_the_button_has_no_number() -> None:
    raw = make_email(
        html=reply_html(
            "You have a new message from Priya Nair regarding Tiles", ["Matte finish?"], "Call"
        ),
        sender=REPLY_FROM,
        subject="Re: Enquiry for Tiles from Priya via IndiaMART",
    )
    assert pick(parse_one(raw), "phone", "messages") == {
        "phone": "+919845600066",
        "messages": ["Matte finish?"],
    }


def test_reply_text_part_without_a_call_button_number() -> None:
    text = "Dear Ravi Kumar,\n\nYou have a new message from Priya Nair regarding Tiles\n\nMatte finish?\n\nCall\nChat\nReply\n"
    result = parse_one(make_email(text=text, sender=REPLY_FROM, subject="Re: Enquiry for Tiles"))
    assert pick(result, "kind", "name", "phone", "messages") == {
        "kind": "reply",
        "name": "Priya Nair",
        "phone": None,
        "messages": ["Matte finish?"],
    }


def test_reply_without_the_intro_line_is_an_error_that_says_so() -> None:
    raw = make_email(
        html="<p>Dear Ravi Kumar,</p><p>Something changed.</p>", sender=REPLY_FROM, subject="Re: x"
    )
    result = parse_one(raw)
    assert result["kind"] == "error"
    assert "You have … new message(s) from" in result["error"]


# ---------------------------------------------------------------- TradeIndia

TI_FROM = "TradeIndia <inquiry.paid@rfis.tradeindia.com>"


def ti_html(ext: str | None, *, country: str = "IN", email: str = "pooja.menon@example.in") -> str:
    link = f"https://my.tradeindia.example/inquiry/view?src=mail&amp;ext={ext}" if ext else "#"
    return (
        "<html><body><p>Dear Ravi Kumar,</p><p>You have received a new inquiry on TradeIndia.</p><ul>"
        "<li><b>Sender Name:</b> Pooja Menon</li><li><b>Product Details:</b> HDPE Water Tank</li>"
        "<li><b>Requirement Details:</b> Need 20 tanks.<br>Deliver to Kochi.</li><li><b>Buyer Details:</b><br>"
        f"NAME - Pooja Menon<br>Email - {email}<br>Mobile - 9447012345<br>City - Kochi<br>"
        f"State - KL<br>Country - {country}</li></ul>"
        f'<p><a href="{link}">Click here to check inquiry</a></p></body></html>'
    )


def _ext(query: str, *, padded: bool = True) -> str:
    encoded = base64.urlsafe_b64encode(query.encode()).decode()
    return encoded if padded else encoded.rstrip("=")


@pytest.mark.parametrize(
    ("ext", "external_id"),
    [
        (_ext("rfi_id=60123456&src=mail&typ=paid"), "60123456"),
        (_ext("rfi_id=6012345&src=mail", padded=False), "6012345"),  # padding-less
        (_ext("rfi_id=__RFI_ID__&src=mail"), None),  # an unfilled placeholder
        (None, None),  # no ext at all
    ],
)
def test_tradeindia_inquiry_id(ext: str | None, external_id: str | None) -> None:
    raw = make_email(
        html=ti_html(ext),
        sender=TI_FROM,
        subject="HDPE WATER TANK Inquiry from Pooja Menon through tradeindia.com",
    )
    lead = parse_one(raw)
    assert lead["external_id"] == external_id
    assert pick(
        lead,
        "source",
        "name",
        "company",
        "phone",
        "email",
        "city",
        "state",
        "country",
        "product",
        "message",
    ) == {
        "source": "tradeindia",
        "name": "Pooja Menon",
        "company": None,
        "phone": "+919447012345",
        "email": "pooja.menon@example.in",
        "city": "Kochi",
        "state": "Kerala",
        "country": "IN",
        "product": "HDPE Water Tank",
        "message": "Need 20 tanks.\nDeliver to Kochi.",
    }


def test_tradeindia_whatsapp_country_name_and_placeholder_email() -> None:
    html = ti_html(None, country="Nepal", email="noreply@noreply.tradeindia.com")
    raw = make_email(
        html=html, sender=TI_FROM, subject="Water Tank Inquiry from Pooja Menon through TI Whatsapp"
    )
    lead = parse_one(raw)
    assert pick(lead, "query_type", "country", "email") == {
        "query_type": "WA",
        "country": "NP",
        "email": None,
    }


def test_tradeindia_looking_for_suppliers_text_only() -> None:
    text = (
        "Dear Ravi Kumar,\n* Sender Name: Pooja Menon\n* Product Details: Water Tank\n"
        "* Requirement Details: 20 tanks\n* Buyer Details:\n   Name - Pooja Menon\n   Company - Menon Estates\n"
        "   Mobile - +91-9447012345\n   country - India\n"
        "Click here to check inquiry: https://my.tradeindia.example/inquiry/view?ext="
        + _ext("rfi_id=42")
        + "\n"
    )
    lead = parse_one(
        make_email(text=text, sender=TI_FROM, subject="Looking for suppliers of Water Tank")
    )
    assert pick(lead, "external_id", "company", "country", "query_type") == {
        "external_id": "42",
        "company": "Menon Estates",
        "country": "IN",
        "query_type": None,
    }


def test_tradeindia_mail_that_is_not_an_inquiry_is_ignored() -> None:
    raw = make_email(
        html="<p>Upgrade to a premium plan</p>",
        sender="TradeIndia <offers@tradeindia.com>",
        subject="Grow faster",
    )
    result = parse_one(raw)
    assert result["kind"] == "ignored"
    assert "TradeIndia" in result["reason"]


# ---------------------------------------------------------------- not leads, and errors


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("Shop <orders@shop.example.com>", "mail from shop.example.com"),
        (
            "IndiaMART <buyershelp+enq@indiamart.com.evil.example>",
            "mail from indiamart.com.evil.example",
        ),
        ("IndiaMART <buyershelp+enq@notindiamart.com>", "mail from notindiamart.com"),
        ("IndiaMART <buyershelp+enq@mail.indiamart.com>", "mail from mail.indiamart.com"),
        ('"buyershelp+enq@indiamart.com" <phish@evil.example>', "mail from evil.example"),
    ],
)
def test_enquiry_from_any_other_domain_is_ignored(sender: str, reason: str) -> None:
    result = parse_one(make_email(html=Enquiry().html(), sender=sender))
    assert result["kind"] == "ignored"
    assert reason in result["reason"]
    assert "only indiamart.com and tradeindia.com carry leads" in result["reason"]
    assert result["message_id"] == "t1.abc@mail.indiamart.com"


@pytest.mark.parametrize(
    ("sender", "subject", "reason"),
    [
        (
            "payments@indiamart.com",
            "Payment Receipt for Order No. 1",
            "not a lead: payment receipt",
        ),
        ("accounts@indiamart.com", "Tax Invoice for March", "not a lead: invoice"),
        ("noreply@indiamart.com", "Your OTP for login is 123456", "not a lead: one-time password"),
        ("newsletter@indiamart.com", "Trending BuyLeads this week", "not a lead: newsletter"),
        (
            "noreply@indiamart.com",
            "Enquiry for Fly Ash Bricks from Sunil via IndiaMART",
            "IndiaMART notification from noreply@indiamart.com",
        ),
    ],
)
def test_other_indiamart_mail_is_ignored_with_a_reason(
    sender: str, subject: str, reason: str
) -> None:
    result = parse_one(make_email(html=Enquiry().html(), sender=sender, subject=subject))
    assert result["kind"] == "ignored"
    assert reason in result["reason"]


def test_enquiry_without_regards_is_an_error_a_user_can_act_on() -> None:
    html = "<p>Dear Ravi Kumar,</p><p>I am looking for <b>Bricks</b>.</p><p>Sunil Rao</p>"
    result = parse_one(make_email(html=html))
    assert result == {
        "kind": "error",
        "error": "IndiaMART enquiry without a buyer block (no 'Regards,' line)",
    }


def test_enquiry_whose_only_text_is_the_unfilled_template_is_an_error() -> None:
    template = "Dear%20%7B%7B.toname%7D%7D%2C%0A%0AI%20am%20looking%20for%20%7B%7B.product%7D%7D"
    result = parse_one(make_email(text=template))
    assert result["kind"] == "error"
    assert "unfilled template" in result["error"]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", "empty input: not an email"),
        (b"  \r\n ", "empty input: not an email"),
        (b"hello world, this is not an email", "not an email: no From, Subject or Date header"),
        (b"Subject: hi\n\nbody", "email without a From address"),
    ],
)
def test_what_is_not_an_email(raw: bytes, error: str) -> None:
    result = parse_one(raw)
    assert result["kind"] == "error"
    assert result["error"].startswith(error)


# ---------------------------------------------------------------- hostile text is data


def test_hostile_text_is_stripped_of_controls_and_kept_as_data() -> None:
    enquiry = Enquiry(
        name="\x1b[31mRajat\x1b[0m \u202eVerma",
        company="[bold]Boss[/bold] Traders",
        free=[
            "\x1b]52;c;cm0gLXJmIH4=\x07Call me [@click=app.quit]now",
            "<script>alert(1)</script>",
        ],
    )
    for raw in (make_email(html=enquiry.html()), make_email(text=enquiry.text(), cte="8bit")):
        lead = parse_one(raw)
        assert lead["name"] == "[31mRajat[0m Verma"
        assert lead["company"] == "[bold]Boss[/bold] Traders"
        assert lead["message"].split("\n")[1:] == [
            "]52;c;cm0gLXJmIH4=Call me [@click=app.quit]now",
            "<script>alert(1)</script>",
        ]


def test_escaped_markup_in_html_stays_text_and_entity_controls_are_stripped() -> None:
    html = (
        replace(Enquiry(), name="Rajat").html().replace("Rajat", "&#27;[1mRajat &lt;b&gt;&#x202E;")
    )
    lead = parse_one(make_email(html=html))
    assert lead["name"] == "[1mRajat <b>"
