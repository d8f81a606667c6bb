"""Synthetic IndiaMART and TradeIndia lead emails: the demo's simulated inbox, benchmarks, tests.

``email(rng, kind)`` writes one RFC 822 message in the layout families of the real samples
(HTML with a text part, text only, wrapped with an inline logo, quoted-printable or
base64, LF or CRLF), with invented buyers, companies, places, products and numbers.
``generate`` also returns what the mail is meant to say, so tests can check that the real
parser reads it back. Everything is drawn from the ``random.Random`` passed in: one seed,
one mail, byte for byte. All names, numbers and addresses are invented.
"""

from __future__ import annotations

import base64
import quopri
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.utils import format_datetime, formataddr
from html import escape
from typing import Any

from leadtui.formats.places import STATE_CODES
from leadtui.formats.text import IST, normalize_name

KINDS = ("enquiry", "export", "phone", "buylead", "reply", "tradeindia", "newsletter")
_WEIGHTS = (40, 5, 10, 25, 8, 7, 5)
_EPOCH = datetime(2026, 3, 2, 9, 0, tzinfo=IST)  # when no time is given: a fixed, seeded spread

# ---------------------------------------------------------------- invented people and things

_FIRST = [
    "Aarav",
    "Aditi",
    "Amit",
    "Anil",
    "Anita",
    "Arjun",
    "Deepa",
    "Deepak",
    "Divya",
    "Farhan",
    "Gaurav",
    "Harpreet",
    "Imran",
    "Kavita",
    "Kiran",
    "Lakshmi",
    "Manoj",
    "Meena",
    "Mohit",
    "Naveen",
    "Neha",
    "Pooja",
    "Priya",
    "Rahul",
    "Rajesh",
    "Ravi",
    "Rohit",
    "Sanjay",
    "Shalini",
    "Sunil",
    "Suresh",
    "Swati",
    "Vikram",
    "Yusuf",
    "Zoya",
    "Bhavna",
    "Chetan",
    "Geeta",
    "Irfan",
    "Jyoti",
    "Karthik",
]
_LAST = [
    "Sharma",
    "Verma",
    "Gupta",
    "Patel",
    "Reddy",
    "Nair",
    "Iyer",
    "Rao",
    "Singh",
    "Khan",
    "Menon",
    "Joshi",
    "Kulkarni",
    "Das",
    "Banerjee",
    "Chatterjee",
    "Mehta",
    "Shah",
    "Pillai",
    "Naidu",
    "Chauhan",
    "Yadav",
    "Mishra",
    "Agarwal",
    "Bansal",
    "Fernandes",
    "Bhat",
    "Saini",
]
_NATIVE_NAMES = (
    "राजेश वर्मा",
    "सुनीता शर्मा",
    "முருகன் செல்வம்",
    "অমিত দাস",
    "કિરણ પટેલ",
    "సురేష్ రెడ్డి",
    "ರವಿ ಕುಮಾರ್",
    "പ്രിയ നായർ",
    "Noël D’Souza",
)
_COMPANY_SUFFIXES = (
    "Traders",
    "Enterprises",
    "Constructions",
    "Builders",
    "Industries",
    "Infra",
    "Agro Industries",
    "Steel Works",
    "Electricals",
    "Interiors",
    "Estates",
    "& Sons",
    "Pvt. Ltd.",
    "Hardware",
)
# City, state, PIN prefix.
_CITIES = (
    ("Mysuru", "Karnataka", "570"),
    ("Kochi", "Kerala", "682"),
    ("Indore", "Madhya Pradesh", "452"),
    ("Hyderabad", "Telangana", "500"),
    ("Rajkot", "Gujarat", "360"),
    ("Ludhiana", "Punjab", "141"),
    ("Jaipur", "Rajasthan", "302"),
    ("Lucknow", "Uttar Pradesh", "226"),
    ("Pune", "Maharashtra", "411"),
    ("Nagpur", "Maharashtra", "440"),
    ("Coimbatore", "Tamil Nadu", "641"),
    ("Chennai", "Tamil Nadu", "600"),
    ("Bhopal", "Madhya Pradesh", "462"),
    ("Raipur", "Chhattisgarh", "492"),
    ("Bhubaneswar", "Odisha", "751"),
    ("Patna", "Bihar", "800"),
    ("Guwahati", "Assam", "781"),
    ("Dehradun", "Uttarakhand", "248"),
    ("Kolkata", "West Bengal", "700"),
    ("New Delhi", "Delhi", "110"),
    ("Surat", "Gujarat", "395"),
    ("Nashik", "Maharashtra", "422"),
    ("Visakhapatnam", "Andhra Pradesh", "530"),
    ("Ranchi", "Jharkhand", "834"),
    ("Panaji", "Goa", "403"),
    ("Shimla", "Himachal Pradesh", "171"),
    ("Gurugram", "Haryana", "122"),
)
_CODE_OF_STATE = {state: code for code, state in reversed(list(STATE_CODES.items()))}
# City, region, country, ISO, calling code, national digits.
_ABROAD = (
    ("Dubai", None, "United Arab Emirates", "AE", "971", 9),
    ("Austin", "Texas", "United States", "US", "1", 10),
    ("London", None, "United Kingdom", "GB", "44", 10),
    ("Lagos", None, "Nigeria", "NG", "234", 10),
    ("Nairobi", None, "Kenya", "KE", "254", 9),
    ("Kathmandu", None, "Nepal", "NP", "977", 10),
    ("Muscat", None, "Oman", "OM", "968", 8),
    ("Doha", None, "Qatar", "QA", "974", 8),
    ("Singapore", None, "Singapore", "SG", "65", 8),
    ("Toronto", "Ontario", "Canada", "CA", "1", 10),
    ("Colombo", None, "Sri Lanka", "LK", "94", 9),
)
# Product, usual unit, spec label → choices.
_PRODUCTS: tuple[tuple[str, str, dict[str, tuple[str, ...]]], ...] = (
    ("Fly Ash Bricks", "Piece", {"Size": ("9 x 4 x 3 Inch", "230 x 110 x 75 mm")}),
    ("Red Clay Bricks", "Piece", {"Grade": ("First Class", "Second Class")}),
    ("AAC Blocks", "Cubic Meter", {"Size": ("600 x 200 x 150 mm", "600 x 200 x 100 mm")}),
    (
        "Vitrified Floor Tiles",
        "Square Feet",
        {"Size": ("600x600 mm", "800x800 mm"), "Finish": ("Glossy", "Matt")},
    ),
    ("Terracotta Jali", "Piece", {"Color": ("Natural Red", "Brown")}),
    (
        "MS Window Grill",
        "Piece",
        {"Material": ("Iron", "Mild Steel"), "Finish": ("Polished", "Powder Coated")},
    ),
    ("HDPE Water Tank", "Piece", {"Capacity": ("500 Litre", "1000 Litre", "2000 Litre")}),
    (
        "Solar Street Light",
        "Piece",
        {"Wattage": ("30 W", "60 W"), "Usage/Application": ("Outdoor", "Road")},
    ),
    (
        "Submersible Water Pump",
        "Piece",
        {"Power": ("1 HP", "5 HP"), "Phase": ("Single Phase", "Three Phase")},
    ),
    ("Proximity Sensor", "Piece", {"Model": ("Inductive M18", "Capacitive M30")}),
    ("Paver Blocks", "Square Feet", {"Thickness": ("60 mm", "80 mm"), "Color": ("Grey", "Red")}),
    ("Portland Cement", "Bag", {"Grade": ("OPC 53", "PPC")}),
    ("TMT Bars", "Ton", {"Grade": ("Fe 500", "Fe 550D")}),
    ("Basmati Rice", "Kilogram", {"Packaging Size": ("25 kg", "50 kg")}),
    ("Turmeric Powder", "Kilogram", {"Purity": ("99%",), "Form": ("Powder",)}),
    ("Cotton Fabric", "Meter", {"GSM": ("120", "180"), "Pattern": ("Plain", "Printed")}),
    ("LED Panel Light", "Piece", {"Wattage": ("18 W", "24 W"), "Shape": ("Round", "Square")}),
    ("Corrugated Boxes", "Piece", {"Packaging Type": ("Box",), "Size": ("12 x 10 x 8 Inch",)}),
    ("PVC Pipes", "Meter", {"Size": ("1 inch", "2 inch")}),
    ("Steel Almirah", "Piece", {"Color": ("Grey", "Brown"), "Brand": ("Godrej",)}),
    ("Mangalore Roof Tiles", "Piece", {"Width": ("10 inch",), "Length": ("16 inch",)}),
)
_QUANTITIES = (2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 1500, 2000, 5000, 10000)
_ORDER_VALUES = (
    "Rs. 3,000 to 10,000",
    "Rs. 10,000 - 20,000",
    "Rs. 20,000 to 50,000",
    "Rs. 50,000 to 1 Lakh",
    "Rs. 1 to 2 Lakh",
    "Rs. 2 to 5 Lakh",
    "Rs. 1 - 2 Lakh",
)
_REQUIREMENT_TYPES = ("Business Use", "Personal Use", "Reselling")
_FREE_TEXT = (
    "Please share your best price including delivery.",
    "Need delivery at our site within two weeks.",
    "Kindly send catalogue and price list.",
    "Please quote for a bulk order with GST invoice.",
    "From next week we need a regular supply, share your terms.",
    "Is transport included in the rate?",
)
_REPLIES = (
    "Please share best rate for 500 pcs.",
    "Can you deliver by Friday?",
    "Is the price negotiable?",
    "Please send photos of the product.",
    "What is the minimum order quantity?",
    "Do you have stock available?",
    "From Monday I am available on call after 11 AM.",
)
_SELLERS = ("Ravi Kumar", "Mohit Bansal", "Anjali Rao", "Sandeep Jain")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Synthetic:
    """One generated mail and what it is meant to say, as the parser should read it."""

    raw: bytes
    kind: str  # the generator's kind: "enquiry", …, "newsletter"
    date: datetime  # the Date header
    expected: dict[str, Any]  # contract fields: kind, name, phone, product, received_at, …


# ---------------------------------------------------------------- small helpers


def _person(rng: random.Random) -> str:
    if rng.random() < 0.08:
        return rng.choice(_NATIVE_NAMES)
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _shouted(rng: random.Random, name: str, chance: float) -> str:
    """The name in capitals, as BuyLead mails often write it, when that reads back the same."""
    if rng.random() < chance and name.isascii() and normalize_name(name.upper()) == name:
        return name.upper()
    return name


def _company(rng: random.Random, name: str) -> str:
    surname = name.rsplit(maxsplit=1)[-1] if name.isascii() else rng.choice(_LAST)
    return f"{surname} {rng.choice(_COMPANY_SUFFIXES)}"


def _indian_mobile(rng: random.Random) -> tuple[str, str]:
    """(as written in the mail, E.164)."""
    digits = str(rng.choice("6789")) + "".join(str(rng.randrange(10)) for _ in range(9))
    written = rng.choice(
        (f"+91-{digits}", f"+91 {digits[:5]} {digits[5:]}", f"+91-{digits}", f"0{digits}", digits)
    )
    return written, "+91" + digits


def _foreign_phone(rng: random.Random, code: str, length: int) -> tuple[str, str]:
    digits = str(rng.randrange(2, 10)) + "".join(str(rng.randrange(10)) for _ in range(length - 1))
    return f"+{code}-{digits}", f"+{code}{digits}"


def _email_of(rng: random.Random, name: str) -> str:
    local = (
        ".".join(name.lower().split()) if name.isascii() else f"buyer{rng.randrange(1000, 9999)}"
    )
    local = re.sub(r"[^a-z0-9.]", "", local) or "buyer"
    return f"{local}@{rng.choice(('example.com', 'example.in', 'example.co.in', 'example.net'))}"


def _when(rng: random.Random, when: datetime | None) -> datetime:
    """The mail's time: as given (naive means IST), else a seeded time in a 30-day window."""
    if when is None:
        return _EPOCH + timedelta(seconds=rng.randrange(30 * 24 * 3600))
    when = when.replace(microsecond=0)  # a Date header has whole seconds
    return when.replace(tzinfo=IST) if when.tzinfo is None else when


def _message_id(rng: random.Random, domain: str) -> str:
    return (
        f"{rng.getrandbits(32):08x}.{rng.getrandbits(48):012x}.{rng.getrandbits(24):06x}@{domain}"
    )


def _requirement(
    rng: random.Random, unit: str, specs: dict[str, tuple[str, ...]]
) -> list[tuple[str, str]]:
    rows = [("Quantity", str(rng.choice(_QUANTITIES))), ("Quantity Unit", unit)]
    rows += [(label, rng.choice(values)) for label, values in specs.items() if rng.random() < 0.6]
    if rng.random() < 0.7:
        rows.append(("Probable Order Value", rng.choice(_ORDER_VALUES)))
    if rng.random() < 0.6:
        rows.append(("Probable Requirement Type", rng.choice(_REQUIREMENT_TYPES)))
    return rows


# ---------------------------------------------------------------- MIME


def _encode_body(text: str, cte: str) -> bytes:
    data = text.encode("utf-8")
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":
        return quopri.encodestring(data)
    return data


def _leaf(ctype: str, text: str, cte: str) -> bytes:
    head = f'Content-Type: {ctype}; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n\n'
    return head.encode() + _encode_body(text, cte)


def _multipart(rng: random.Random, subtype: str, parts: list[bytes]) -> bytes:
    boundary = f"----=_Part_{rng.getrandbits(40):010x}_{subtype[:3]}"
    out = f'Content-Type: multipart/{subtype};\n\tboundary="{boundary}"\n\n'
    out += "This is a multi-part message in MIME format.\n\n"
    body = out.encode()
    for part in parts:
        body += f"--{boundary}\n".encode() + part + b"\n"
    return body + f"--{boundary}--\n".encode()


def _header(value: str) -> str:
    """A header value, RFC 2047-encoded and folded when it needs to be."""
    if value.isascii() and len(value) < 70:
        return value
    return Header(value, "utf-8" if not value.isascii() else "us-ascii", maxlinelen=76).encode()


def _message(
    rng: random.Random,
    *,
    sender: str,
    subject: str,
    when: datetime,
    message_id: str,
    html: str | None,
    text: str | None,
    reply_to: str | None = None,
) -> bytes:
    cte = rng.choice(("quoted-printable", "quoted-printable", "base64", "8bit"))
    leaves = []
    if text is not None:
        leaves.append(_leaf("text/plain", text, cte))
    if html is not None:
        leaves.append(_leaf("text/html", html, rng.choice(("quoted-printable", "base64"))))
    body = leaves[0] if len(leaves) == 1 else _multipart(rng, "alternative", leaves)
    if html is not None and rng.random() < 0.15:  # an inline logo wraps it in multipart/related
        logo = b"Content-Type: image/png\nContent-Transfer-Encoding: base64\nContent-ID: <logo>\n\n"
        body = _multipart(rng, "related", [body, logo + base64.encodebytes(b"\x89PNG\r\n" * 12)])
    headers = [
        ("Return-Path", f"<{sender.rpartition('<')[2].rstrip('>')}>"),
        ("Date", format_datetime(when)),
        ("From", sender),
        ("To", f"{rng.choice(_SELLERS)} <sales@seller.example.in>"),
        ("Reply-To", reply_to),
        ("Subject", _header(subject)),
        ("Message-ID", f"<{message_id}>"),
        ("MIME-Version", "1.0"),
    ]
    head = "".join(f"{name}: {value}\n" for name, value in headers if value)
    raw = head.encode() + body
    return raw.replace(b"\n", b"\r\n") if rng.random() < 0.2 else raw


# ---------------------------------------------------------------- HTML layouts


def _page(title: str, preheader: str, content: str) -> str:
    return (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />\n'
        f"<title>{escape(title)}</title>\n"
        '<style type="text/css">body { margin:0; padding:0; } a.im-btn { display:inline-block; }</style>\n'
        '</head>\n<body style="margin:0;padding:0;background-color:#eef0f3;">\n'
        '<div style="display:none;font-size:1px;max-height:0px;overflow:hidden;">'
        f"{escape(preheader)}&nbsp;&zwnj;&nbsp;&zwnj;</div>\n"
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr><td align="center">\n'
        '<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="background-color:#ffffff;">\n'
        '<tr><td style="padding:12px 20px;"><img src="https://static.imimg.example/logo.png" alt="IndiaMART" width="128" /></td>\n'
        f'<td align="right" style="padding:12px 20px;color:#6b7280;">{escape(title)}</td></tr>\n'
        f'<tr><td colspan="2" style="padding:22px 24px;font-family:Arial,sans-serif;font-size:14px;">\n{content}\n</td></tr>\n'
        '<tr><td colspan="2" style="padding:14px 24px;font-size:11px;color:#8a8f98;">\n'
        " You are receiving this email because you are a registered seller on IndiaMART.<br />\n"
        " &copy; IndiaMART InterMESH Ltd., Noida &ndash; 201305\n</td></tr>\n</table>\n</td></tr></table>\n"
        '<img src="https://trk.imimg.example/open.gif" width="1" height="1" alt="" />\n</body>\n</html>\n'
    )


def _button(label: str, href: str) -> str:
    return f'<td style="padding-right:10px;"><a class="im-btn" href="{escape(href)}">{escape(label)}</a></td>'


def _table_rows(rows: list[tuple[str, str]]) -> str:
    return "".join(
        f'<tr><td style="padding:3px 8px 3px 0;color:#6b7280;">{escape(label)}</td>'
        f'<td style="padding:3px 6px;">:</td><td style="padding:3px 0;"><b>{escape(value)}</b></td></tr>\n'
        for label, value in rows
    )


_BROKEN_TEXT = (
    "Dear%20%7B%7B.toname%7D%7D%2C%0A%0AI%20am%20looking%20for%20%7B%7B.product%7D%7D%20.%0A%0A"
    "Below%20are%20my%20requirements%3A%0A%7B%7Brange%20.details%7D%7D%7B%7B.label%7D%7D%20%3A%20"
    "%7B%7B.value%7D%7D%0A%7B%7Bend%7D%7D%0ARegards%2C%0A%7B%7B.sendername%7D%7D%0A"
)


# ---------------------------------------------------------------- enquiries (direct, export, phone)


def _enquiry(rng: random.Random, when: datetime, kind: str) -> Synthetic:
    abroad = rng.choice(_ABROAD) if kind == "export" else None
    name = _person(rng)
    company = _company(rng, name) if rng.random() < 0.8 else None
    product, unit, specs = rng.choice(_PRODUCTS)
    verb = rng.choice(("I am looking for", "I am looking for", "I need"))
    rows = _requirement(rng, unit, specs)
    if abroad:
        rows = [(k, "USD 1,000 - 3,000" if k == "Probable Order Value" else v) for k, v in rows]
    free = [rng.choice(_FREE_TEXT)] if rng.random() < 0.6 else []
    masked = kind == "enquiry" and rng.random() < 0.05
    if abroad:
        phone_written, phone = _foreign_phone(rng, abroad[4], abroad[5])
    else:
        phone_written, phone = _indian_mobile(rng)
    expected_phone: str | None = phone
    if masked:
        phone_written, expected_phone = f"+91-{phone[3:5]}XXXXXX{phone[-2:]}", None
    email = _email_of(rng, name) if rng.random() < (0.3 if abroad else 0.75) else None
    phone_verified = expected_phone is not None and rng.random() < 0.6
    email_verified = email is not None and rng.random() < 0.5
    gst = company is not None and rng.random() < 0.3
    if abroad:
        city, region, country_name = abroad[0], abroad[1], abroad[2]
        location = ", ".join(part for part in (city, region, country_name) if part)
    else:
        city, state, pin_prefix = rng.choice(_CITIES)
        pin = pin_prefix + f"{rng.randrange(1000):03d}"
        location = f"{city} - {pin}, {state}" if rng.random() < 0.4 else f"{city}, {state}"
    note = rng.random() < 0.3
    member_since = (
        f"{rng.choice(_MONTHS)}, {rng.randrange(2012, 2026)}" if rng.random() < 0.4 else None
    )

    seller = rng.choice(_SELLERS)
    call_href = f"https://m.indiamart.example/call{phone_written.replace(' ', '')}?src=enq_mail"
    block = [f'<b style="font-size:15px;">{escape(name)}</b>']
    if company:
        gst_note = (
            '&nbsp;<span style="color:#15803d;">(GST verified by IndiaMART)</span>' if gst else ""
        )
        block.append(escape(company) + gst_note)
    verified = ' <span style="color:#15803d;">(verified)</span>'
    block.append(
        f'Click to call: <a href="{escape(call_href)}">{escape(phone_written)}</a>{verified if phone_verified else ""}'
    )
    if email:
        block.append(
            f'Email: <a href="mailto:{escape(email)}">{escape(email)}</a>{verified if email_verified else ""}'
        )
    else:
        block.append('Email: <span style="color:#9ca3af;">Not Provided</span>')
    block.append(escape(location))
    if note:
        block.append(
            '<span style="color:#6b7280;">(Please call buyer between 10 AM and 7 PM)</span>'
        )
    footer = ""
    if member_since:
        footer = (
            '<div style="margin-top:16px;"><b>Additional details about me:</b><ul>'
            f"<li>Interested Products: {escape(product)}</li><li>Requirements till date: {rng.randrange(1, 30)}</li>"
            f"<li>Member since: {escape(member_since)}</li></ul></div>"
        )
    content = (
        f"<div>Dear {escape(seller)},</div>\n"
        f'<div style="margin-top:10px;">{verb} <b>{escape(product)}</b>.</div>\n'
        '<div style="margin:14px 0 6px 0;font-weight:bold;">Below are the requirement details</div>\n'
        f'<table role="presentation" cellpadding="0" cellspacing="0" border="0">\n{_table_rows(rows)}</table>\n'
        + "".join(f'<div style="margin-top:10px;">{escape(line)}</div>\n' for line in free)
        + '<div style="margin-top:18px;">Regards,</div>\n'
        + '<div style="margin-top:4px;line-height:22px;">\n'
        + "<br />\n".join(block)
        + "\n</div>\n"
        + '<table role="presentation" style="margin-top:18px;"><tr>'
        + _button("Call Now", call_href.replace("enq_mail", "btn"))
        + _button("Reply", "https://seller.indiamart.example/messagecentre/?enq=reply")
        + "</tr></table>\n"
        + footer
    )
    title = "Enquiry by Phone" if kind == "phone" else "Buyer Enquiry"
    html = _page(title, f"{product} enquiry from {name}", content)

    three_line = kind == "phone" or rng.random() < 0.3
    text_lines = [f"Dear {seller},", "", f"{verb} {product} .", "", "Below are my requirements:"]
    for label, value in rows:
        text_lines += [label, ":", value] if three_line else [f"{label} : {value}"]
    text_lines += ["", *free, "", "Regards,", name, *([company] if company else [])]
    text_lines.append(f"Click to call: {phone_written}{' (verified)' if phone_verified else ''}")
    email_text = (email + (" (verified)" if email_verified else "")) if email else "Not Provided"
    text_lines += ["Email:", email_text] if three_line else [f"Email: {email_text}"]
    text_lines += [
        location,
        "",
        "Call Now",
        "Reply",
        "",
        "--",
        "IndiaMART InterMESH Ltd., Noida - 201305",
    ]
    text = "\n".join(text_lines) + "\n"

    first = name.split()[0]
    short_product = product
    if rng.random() < 0.1:  # subjects get truncated, sometimes mid-word; the body wins
        short_product = product[: max(4, len(product) - rng.randrange(1, 4))]
    if kind == "phone":
        called = (when - timedelta(minutes=rng.randrange(1, 15))).astimezone(IST).replace(second=0)
        day = f"{called.day:02d}-{_MONTHS[called.month - 1].upper()}-{called.year}"
        subject = f"{product} Enquiry by Phone on {day} at {called:%I:%M} {'AM' if called.hour < 12 else 'PM'}"
        received_at = called.isoformat()
        sender = rng.choice(
            ("IndiaMART <buyershelp+enq@indiamart.com>", "IndiaMART <call-support@indiamart.com>")
        )
    else:
        country_part = f", {abroad[2]}" if abroad else ""
        prefix = "Export Enquiry" if abroad else "Enquiry"
        subject = f"{prefix} for {short_product} from {first}{country_part} via IndiaMART"
        received_at = when.isoformat()
        sender = "IndiaMART <buyershelp+enq@indiamart.com>"

    layout = rng.random()
    if kind == "phone" and layout < 0.5:
        html_part, text_part = None, text  # phone enquiries are often text only
    elif layout < 0.35:
        html_part, text_part = html, _BROKEN_TEXT  # the broken text part: the HTML is the data
    elif layout < 0.45:
        html_part, text_part = html, None
    else:
        html_part, text_part = html, text
    raw = _message(
        rng,
        sender=sender,
        subject=subject,
        when=when,
        message_id=_message_id(rng, "mail.indiamart.com"),
        html=html_part,
        text=text_part,
        reply_to=None
        if kind == "phone"
        else formataddr((name, f"buyer.{rng.getrandbits(24):06x}@reply.indiamart.com")),
    )
    expected = {
        "kind": "lead",
        "source": "indiamart",
        "query_type": "P" if kind == "phone" else "W",
        "name": name,
        "company": company,
        "phone": expected_phone,
        "email": email,
        "product": product,
        "city": city,
        "country": abroad[3] if abroad else "IN",
        "received_at": received_at,
        "quantity": rows[0][1],
        "unit": unit,
    }
    return Synthetic(raw, kind, when, expected)


# ---------------------------------------------------------------- BuyLeads


def _buylead(rng: random.Random, when: datetime) -> Synthetic:
    name = _person(rng)
    shown = _shouted(rng, name, 0.5)
    company = _company(rng, name) if rng.random() < 0.75 else None
    city, state, pin_prefix = rng.choice(_CITIES)
    code = _CODE_OF_STATE[state]
    place = f"{city} - {pin_prefix}{rng.randrange(1000):03d}" if rng.random() < 0.6 else city
    identity = ", ".join(part for part in (company, place, code) if part)
    merged = rng.random() < 0.25
    phone_written, phone = _indian_mobile(rng)
    email = _email_of(rng, name) if rng.random() < 0.8 else None
    ticks = [label for label in ("Phone", "Email", "GST") if rng.random() < 0.6]
    product, unit, specs = rng.choice(_PRODUCTS)
    quantity = str(rng.choice(_QUANTITIES))
    rows = [("Quantity", f"{quantity} {unit}")]
    rows += [(label, rng.choice(values)) for label, values in specs.items() if rng.random() < 0.7]
    if rng.random() < 0.6:
        rows.append(("Probable Order Value", rng.choice(_ORDER_VALUES)))
    member = f"{rng.randrange(1, 12)} {rng.choice(('years', 'months'))}"
    number_below = rng.random() < 0.2

    tick_line = "  ".join(f"{label} ✓" for label in ticks)
    identity_lines = [f"{shown}, {identity}"] if merged else [shown, identity]
    contact = (
        ["Click to call:", phone_written] if number_below else [f"Click to call: {phone_written}"]
    )
    text_lines = ["Buy Lead through IndiaMART", "", "Buyer's Contact Details:"]
    text_lines += [tick_line] if ticks else []
    text_lines += [*identity_lines, *contact]
    text_lines += [f"E-mail: {email}"] if email else []
    text_lines += [f"Member Since: {member}", "", "Buylead Details:", product]
    if rng.random() < 0.5:
        text_lines.append(" ".join(f"{label} : {value}" for label, value in rows))
    else:
        text_lines += [item for row in rows for item in row]
    text_lines += [
        "",
        "Reply To This Message",
        "",
        "IndiaMART recommends that you verify the buyer's requirement.",
        "",
        "Regards,",
        "Team IndiaMART",
    ]
    text = "\n".join(text_lines) + "\n"

    tick_html = " &nbsp; ".join(
        f'{label} <span style="color:#16a34a;">&#10003;</span>' for label in ticks
    )
    contacts = [
        f'Click to call: <a href="https://m.indiamart.example/call{phone_written.replace(" ", "")}">{escape(phone_written)}</a>'
    ]
    contacts += [f'E-mail: <a href="mailto:{escape(email)}">{escape(email)}</a>'] if email else []
    contacts.append(f"Member Since: {escape(member)}")
    spec_rows = "".join(
        f"<tr><td><strong>{escape(label)}</strong></td><td>{escape(value)}</td></tr>"
        for label, value in rows
    )
    content = (
        '<div style="font-size:16px;font-weight:bold;">Buy Lead through IndiaMART</div>\n'
        '<div style="margin-top:14px;font-weight:bold;">Buyer&#39;s Contact Details:</div>\n'
        + (f'<div style="margin-top:4px;">{tick_html}</div>\n' if ticks else "")
        + f'<div style="margin-top:6px;"><b>{escape(identity_lines[0])}</b><br />'
        + "".join(f"{escape(line)}<br />" for line in identity_lines[1:])
        + "<br />".join(contacts)
        + "</div>\n"
        + '<div style="margin-top:16px;font-weight:bold;">Buylead Details:</div>\n'
        + f'<div style="font-size:18px;"><strong>{escape(product)}</strong></div>\n'
        + f'<table role="presentation">{spec_rows}</table>\n'
        + '<div style="margin-top:18px;"><a class="im-btn" href="https://seller.indiamart.example/bl">Reply To This Message</a></div>\n'
        + "<div>IndiaMART recommends that you verify the buyer's requirement.</div>"
    )
    html = _page("BuyLead Contact Details", f"Buyer details for {product}", content)
    subject = (
        f'Buyer Details for "{product}"' if rng.random() < 0.5 else f"Buyer Details for {product}"
    )
    text_only = rng.random() < 0.4
    raw = _message(
        rng,
        sender="IndiaMART <buyleads@indiamart.com>",
        subject=subject,
        when=when,
        message_id=_message_id(rng, "mail.indiamart.com"),
        html=None if text_only else html,
        text=text,
    )
    expected = {
        "kind": "lead",
        "source": "indiamart",
        "query_type": "B",
        "name": name,
        "company": company,
        "phone": phone,
        "email": email,
        "product": product,
        "city": city,
        "state": state,
        "country": "IN",
        "received_at": when.isoformat(),
        "member_since": member,
        "quantity": quantity,
        "unit": unit,
    }
    return Synthetic(raw, "buylead", when, expected)


# ---------------------------------------------------------------- replies


def _reply(
    rng: random.Random, when: datetime, buyer: tuple[str, str | None, str, str] | None = None
) -> Synthetic:
    """A buyer's reply; ``buyer`` is (name, company, product, E.164 phone) of an earlier lead."""
    if buyer is None:
        name = _person(rng)
        company = _company(rng, name) if rng.random() < 0.7 else None
        product = rng.choice(_PRODUCTS)[0]
        with_number = rng.random() < 0.6
        phone_written, phone = _indian_mobile(rng)
    else:
        name, company, product, phone = buyer
        with_number = True
        phone_written = f"{phone[:3]}-{phone[3:]}" if phone.startswith("+91") else phone
    messages = rng.sample(_REPLIES, rng.randrange(1, 4))
    seller = rng.choice(_SELLERS)
    count = "a new message" if len(messages) == 1 else f"{len(messages)} new messages"
    who = f"{name}, {company}" if company else name
    call = f"Call {phone_written}" if with_number else "Call"
    call_href = (
        f"https://m.indiamart.example/call{phone_written.replace(' ', '')}?src=reply"
        if with_number
        else "https://seller.indiamart.example/messagecentre/?act=call"
    )
    who_html = f"<b>{escape(name)}</b>" + (f", {escape(company)}" if company else "")
    bubbles = "".join(
        f'<tr><td style="padding:6px 0;"><div style="display:inline-block;background-color:#f1f5f9;">{escape(m)}</div></td></tr>'
        for m in messages
    )
    content = (
        f"<div>Dear {escape(seller)},</div>\n"
        f'<div style="margin-top:10px;">You have {count} from {who_html} regarding <b>{escape(product)}</b></div>\n'
        f'<table role="presentation" style="width:100%;">{bubbles}</table>\n'
        + '<table role="presentation"><tr>'
        + _button(call, call_href)
        + _button("Chat", "https://seller.indiamart.example/messagecentre/?act=chat")
        + _button("Reply", "https://seller.indiamart.example/messagecentre/?act=reply")
        + "</tr></table>\n"
        '<div style="margin-top:16px;">Regards,<br />Team IndiaMART</div>'
    )
    html = _page("New Message", f"You have {count} from {who} regarding {product}", content)
    text = "\n".join(
        [
            f"Dear {seller},",
            "",
            f"You have {count} from {who} regarding {product}",
            "",
            *messages,
            "",
            call,
            "Chat",
            "Reply",
            "",
            "Regards,",
            "Team IndiaMART",
        ]
    )
    first = name.split()[0]
    if rng.random() < 0.7:
        subject = f"{seller}, {count.replace('a new', '1 new')} for {product} enquiry from {first} via IndiaMART"
    else:
        subject = f"Re: Enquiry for {product} from {first} via IndiaMART"
    raw = _message(
        rng,
        sender="IndiaMART <buyershelp+reply@indiamart.com>",
        subject=subject,
        when=when,
        message_id=_message_id(rng, "mail.indiamart.com"),
        html=html,
        text=text,
        reply_to=formataddr((name, f"buyer.{rng.getrandbits(24):06x}@reply.indiamart.com")),
    )
    expected = {
        "kind": "reply",
        "name": name,
        "company": company,
        "phone": phone if with_number else None,
        "product": product,
        "messages": messages,
        "received_at": when.isoformat(),
    }
    return Synthetic(raw, "reply", when, expected)


# ---------------------------------------------------------------- TradeIndia


def _tradeindia(rng: random.Random, when: datetime) -> Synthetic:
    name = _person(rng)
    company = _company(rng, name) if rng.random() < 0.7 else None
    product, unit, _ = rng.choice(_PRODUCTS)
    city, state, _ = rng.choice(_CITIES)
    phone_written, phone = _indian_mobile(rng)
    email = _email_of(rng, name) if rng.random() < 0.7 else None
    whatsapp = rng.random() < 0.2
    rfi_id = str(rng.randrange(60_000_000, 69_999_999))
    ext = base64.urlsafe_b64encode(f"rfi_id={rfi_id}&src=mail&typ=paid".encode()).decode()
    if rng.random() < 0.5:
        ext = ext.rstrip("=")  # TradeIndia drops the padding about half the time
    link = f"https://my.tradeindia.example/inquiry/view?ext={ext}"
    requirement = (
        f"We need {rng.choice(_QUANTITIES)} {unit.lower()} of {product}. {rng.choice(_FREE_TEXT)}"
    )
    seller = rng.choice(_SELLERS)
    country = rng.choice(("IN", "IN", "India"))
    details = [("Name", name), *([("Company", company)] if company else [])]
    details += [("Email", email or "noreply@noreply.tradeindia.com"), ("Mobile", phone_written)]
    details += [("city", city), ("state", state), ("country", country)]
    html = (
        '<html>\n<head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><title>TradeIndia Inquiry</title></head>\n'
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#333;">\n'
        '<table width="620"><tr><td><img src="https://static.tradeindia.example/img/ti-logo.png" alt="TradeIndia"></td></tr>\n'
        f"<tr><td>\n<p>Dear {escape(seller)},</p>\n"
        "<p>You have received a new inquiry on TradeIndia. Details are given below:</p>\n<ul>\n"
        f"<li><b>Sender Name:</b> {escape(name)}</li>\n<li><b>Product Details:</b> {escape(product)}</li>\n"
        f"<li><b>Requirement Details:</b> {escape(requirement)}</li>\n<li><b>Buyer Details:</b><br />\n"
        + "<br />\n".join(f"{label} - {escape(value)}" for label, value in details)
        + f'\n</li>\n</ul>\n<p><a href="{escape(link)}">Click here to check inquiry</a></p>\n'
        "<p>Respond quickly: buyers prefer suppliers who reply within an hour.</p>\n"
        "</td></tr>\n<tr><td>TradeIndia.com | Infocom Network Pvt. Ltd. | This is an automated e-mail.</td></tr>\n</table>\n"
        f'<img src="https://track.tradeindia.example/mail/open.gif?ext={ext}" width="1" height="1" alt="">\n</body>\n</html>\n'
    )
    text = "\n".join(
        [
            f"Dear {seller},",
            "",
            "You have received a new inquiry on TradeIndia. Details are given below:",
            "",
        ]
        + [
            f"* Sender Name: {name}",
            f"* Product Details: {product}",
            f"* Requirement Details: {requirement}",
            "* Buyer Details:",
        ]
        + [f"   {label} - {value}" for label, value in details]
        + [
            "",
            f"Click here to check inquiry: {link}",
            "",
            "TradeIndia.com | Infocom Network Pvt. Ltd.",
        ]
    )
    channel = "TI Whatsapp" if whatsapp else "tradeindia.com"
    subject = f"{product.upper()} Inquiry from {name} through {channel}"
    raw = _message(
        rng,
        sender="TradeIndia <inquiry.paid@rfis.tradeindia.com>",
        subject=subject,
        when=when,
        message_id=_message_id(rng, "rfis.tradeindia.com"),
        html=html,
        text=text,
    )
    expected = {
        "kind": "lead",
        "source": "tradeindia",
        "query_type": "WA" if whatsapp else None,
        "external_id": rfi_id,
        "name": name,
        "company": company,
        "phone": phone,
        "email": email,
        "product": product,
        "city": city,
        "country": "IN",
        "received_at": when.isoformat(),
        "message": requirement,
    }
    return Synthetic(raw, "tradeindia", when, expected)


# ---------------------------------------------------------------- not leads


def _newsletter(rng: random.Random, when: datetime) -> Synthetic:
    picks = rng.sample(_PRODUCTS, 3)
    rows = "".join(
        f"<tr><td><b>{escape(product)}</b><br /><span>{escape(city)}, {escape(state)}</span></td>"
        f"<td>Quantity : {rng.choice(_QUANTITIES)} {escape(unit)}</td>"
        '<td><a href="https://seller.indiamart.example/bltxn/?src=nl">Contact Buyer Now</a></td></tr>'
        for (product, unit, _), (city, state, _) in zip(picks, rng.sample(_CITIES, 3), strict=True)
    )
    content = (
        '<div style="font-size:18px;font-weight:bold;">Trending BuyLeads this week</div>\n'
        f"<div>Hello {escape(rng.choice(_SELLERS))}, buyers near you are looking for these products:</div>\n"
        f'<table role="presentation" width="100%">{rows}</table>\n'
        "<div>Buy more BuyLead credits and reach buyers first.</div>"
    )
    html = _page("Weekly Digest", "Trending BuyLeads near you", content)
    raw = _message(
        rng,
        sender="IndiaMART <newsletter@indiamart.com>",
        subject=rng.choice(
            ("Trending BuyLeads in your category this week", "Your weekly IndiaMART digest")
        ),
        when=when,
        message_id=_message_id(rng, "mail.indiamart.com"),
        html=html,
        text="Trending BuyLeads this week\n\nView this mail in a browser.\n",
    )
    return Synthetic(raw, "newsletter", when, {"kind": "ignored"})


_BUILDERS = {
    "buylead": _buylead,
    "reply": _reply,
    "tradeindia": _tradeindia,
    "newsletter": _newsletter,
}


# ---------------------------------------------------------------- public API


def generate(
    rng: random.Random, kind: str | None = None, when: datetime | None = None
) -> Synthetic:
    """One synthetic mail with what it is meant to say. ``kind`` is one of :data:`KINDS`
    (a weighted random one when None, mostly enquiries and BuyLeads)."""
    if kind is None:
        kind = rng.choices(KINDS, weights=_WEIGHTS)[0]
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    at = _when(rng, when)
    if kind in ("enquiry", "export", "phone"):
        return _enquiry(rng, at, kind)
    return _BUILDERS[kind](rng, at)


def email(rng: random.Random, kind: str | None = None, when: datetime | None = None) -> bytes:
    """The RFC 822 bytes of one synthetic lead mail (see :func:`generate`)."""
    return generate(rng, kind, when).raw


def reply_to(
    rng: random.Random,
    *,
    name: str,
    company: str | None,
    product: str,
    phone: str,
    when: datetime | None = None,
) -> Synthetic:
    """A reply from the buyer of an earlier lead (the demo's replies attach to real rows)."""
    return _reply(rng, _when(rng, when), (name, company, product, phone))


def push_payload(rng: random.Random, when: datetime | None = None) -> dict[str, Any]:
    """An IndiaMART push body: ``{"CODE": 200, "STATUS": "SUCCESS", "RESPONSE": {…}}``."""
    at = _when(rng, when).astimezone(IST)
    query_type = rng.choices(("W", "B", "P", "WA", "BIZ"), weights=(50, 20, 15, 10, 5))[0]
    name = _person(rng)
    city, state, pin_prefix = rng.choice(_CITIES)
    pincode = f"{pin_prefix}{rng.randrange(1000):03d}" if rng.random() < 0.7 else ""
    product, unit, specs = rng.choice(_PRODUCTS)
    _, phone = _indian_mobile(rng)
    rows = _requirement(rng, unit, specs)
    message = {
        "W": f"I want to buy {product}.\r\rKindly send me price and other details.<br>"
        + "".join(f" {label} :   {value}<br>" for label, value in rows),
        "B": f"Requirement for {product}\n "
        + "<br>".join(f"{label} : {value}" for label, value in rows)
        + "<br>",
        "P": "",
        "WA": f"I am interested in {product}<br>",
        "BIZ": "",
    }[query_type]
    email_address = _email_of(rng, name) if rng.random() < 0.6 else ""
    query_id = (
        rng.randrange(412_000_000, 413_000_000)
        if query_type == "P"
        else rng.randrange(2_790_000_000, 2_800_000_000)
    )
    lead = {
        "UNIQUE_QUERY_ID": query_id if rng.random() < 0.2 else str(query_id),  # numbers occur too
        "QUERY_TYPE": query_type,
        "QUERY_TIME": f"{at:%Y-%m-%d %H:%M:%S}",
        "SENDER_NAME": rng.choice(("BUYER", "IndiaMART Buyer"))
        if query_type == "P" and rng.random() < 0.5
        else name,
        "SENDER_MOBILE": f"+91-{phone[3:]}",
        "SENDER_EMAIL": email_address,
        "SUBJECT": "Buyer Call" if query_type == "P" else f"Requirement for {product}",
        "SENDER_COMPANY": _company(rng, name) if rng.random() < 0.6 else "",
        "SENDER_ADDRESS": f"{city}, {state},         {pincode}".rstrip(", "),
        "SENDER_CITY": city,
        "SENDER_STATE": state,
        "SENDER_PINCODE": pincode,
        "SENDER_COUNTRY_ISO": "IN",
        "SENDER_MOBILE_ALT": "",
        "SENDER_PHONE": "",
        "SENDER_PHONE_ALT": "",
        "SENDER_EMAIL_ALT": "",
        "QUERY_PRODUCT_NAME": "" if query_type == "P" else product,
        "QUERY_MESSAGE": message,
        "QUERY_MCAT_NAME": "" if query_type == "P" else product.split()[-1],
        "CALL_DURATION": str(rng.randrange(10, 600)) if query_type == "P" else "",
        "RECEIVER_MOBILE": "8040000044" if query_type == "P" else "",
    }
    response: Any = [lead] if rng.random() < 0.2 else lead
    return {"CODE": 200, "STATUS": "SUCCESS", "RESPONSE": response}


_MBOX_FROM = re.compile(rb"^(>*From )", re.MULTILINE)


def mbox(rng: random.Random, n: int) -> bytes:
    """An mbox (mboxrd) of ``n`` synthetic mails: ``From `` separator lines, LF line endings,
    and body lines that start with ``From `` (or ``>From ``) quoted with one more ``>``."""
    chunks = []
    for _ in range(n):
        synthetic = generate(rng)
        raw = synthetic.raw.replace(b"\r\n", b"\n")
        if not raw.endswith(b"\n"):
            raw += b"\n"
        when = synthetic.date
        separator = f"From MAILER-DAEMON {when:%a %b} {when.day:2d} {when:%H:%M:%S %Y}\n"
        chunks.append(separator.encode() + _MBOX_FROM.sub(rb">\1", raw) + b"\n")
    return b"".join(chunks)
