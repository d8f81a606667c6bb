"""The parser never raises and never hangs, whatever the input (DESIGN: "pure, never raises").

Hypothesis throws arbitrary bytes, mutated samples and arbitrary JSON at it; explicit cases
cover the hostile shapes the brief lists (huge bodies, deep nesting, broken encodings) and
a long adversarial line for every line pattern. Each example has a hypothesis deadline, so
catastrophic regex backtracking fails a test instead of stalling the suite.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parser_contract import SAMPLES, assert_contract
from test_parser_email import BUYLEAD, REPLY_FROM, TI_FROM, Enquiry, make_email

from leadtui.formats.mime import MAX_TEXT_BYTES
from leadtui.parser import parse, parse_json_bytes

EMAILS = [p.read_bytes() for p in sorted((SAMPLES / "email").glob("*.eml"))]
PAYLOADS = [json.loads(p.read_bytes()) for p in sorted((SAMPLES / "payload").glob("*.json"))]
FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def parse_safely(raw: object) -> list[dict[str, Any]]:
    results = parse(raw)
    assert isinstance(results, list)
    for result in results:
        assert_contract(result)
    return results


def parse_email_safely(raw: bytes) -> dict[str, Any]:
    results = parse_safely(raw)
    assert len(results) == 1, "an email gives exactly one result, whatever its bytes"
    return results[0]


# ---------------------------------------------------------------- emails


@FUZZ
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(raw: bytes) -> None:
    parse_email_safely(raw)


@FUZZ
@given(
    st.sampled_from(EMAILS),
    st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 255)), max_size=30),
)
def test_samples_with_flipped_bytes(raw: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(raw)
    for position, value in flips:
        data[position % len(data)] = value
    parse_email_safely(bytes(data))


@FUZZ
@given(st.sampled_from(EMAILS), st.sampled_from(EMAILS), st.floats(0, 1), st.floats(0, 1))
def test_samples_truncated_and_spliced(
    first: bytes, second: bytes, cut: float, join: float
) -> None:
    parse_email_safely(first[: int(len(first) * cut)])
    parse_email_safely(first[: int(len(first) * cut)] + second[int(len(second) * join) :])


@FUZZ
@given(st.sampled_from(EMAILS), st.integers(0, 20_000), st.binary(min_size=1, max_size=300))
def test_samples_with_junk_inserted(raw: bytes, position: int, junk: bytes) -> None:
    position %= len(raw)
    parse_email_safely(raw[:position] + junk + raw[position:])


# Long lines aimed at every line pattern of the families: labels, buttons, locations,
# phones, intros, one-line specs, quantity, entities, tags. Linear-time patterns read
# each in well under the deadline; a backtracking one would not.
_N = 20_000
ADVERSARIAL = [
    "a" * _N,
    " " * _N + "x",
    ":" * _N,
    "Quantity : " + "1," * _N + "x",
    "Quantity : " + "1" * _N + "-",
    "Call " + "1 " * _N + "x",
    "Call Now " * (_N // 4) + "x",
    "Click to call: " + "+9" * _N,
    "Email: " + "a@" * _N,
    "You have 2 new messages from " + "a, " * _N + "x",
    "You have 2 new messages from " + "regarding " * (_N // 5),
    "I am looking for " + "M.S. " * _N,
    "Size : " * (_N // 4) + "x",
    "Probable Requirement " * (_N // 8) + ": x",
    "Kochi - " * (_N // 4) + "6820",
    ", ".join(["MP"] * (_N // 2)),
    "Member since: " + "x " * _N,
    "(GST verified" * (_N // 8),
    "Phone ✓ " * (_N // 4) + "x",
    "&" * _N + "&#" * _N + "&#x" * _N,
    "<" * _N,
    "<a " * _N,
    "<div style='display:none'>" * (_N // 10),
    "display:none " * (_N // 4),
    "<!--" * _N,
    "<script>" * (_N // 4),
    "=?utf-8?b?" * (_N // 4),
    "ext=" + "A" * _N,
]


@settings(max_examples=len(ADVERSARIAL) * 4, deadline=timedelta(seconds=5))
@given(st.sampled_from(ADVERSARIAL), st.sampled_from(["html", "text", "buylead", "reply", "ti"]))
def test_adversarial_lines_finish(line: str, where: str) -> None:
    if where == "html":
        enquiry = Enquiry(free=[line], location=line, company=line)
        raw = make_email(html=enquiry.html().replace("Dear Ravi Kumar,", line))
    elif where == "text":
        raw = make_email(text=Enquiry(free=[line], phone_line=line).text(), cte="8bit")
    elif where == "buylead":
        text = f"Buyer's Contact Details:\nPhone ✓\n{line}\n{line}\nBuylead Details:\nX\n{line}\nMaterial\n{line}"
        raw = make_email(text=text, sender=BUYLEAD, subject=f"Buyer Details for {line}", cte="8bit")
    elif where == "reply":
        raw = make_email(
            text=f"{line}\nYou have a new message from {line}\n{line}\nCall",
            sender=REPLY_FROM,
            cte="8bit",
        )
    else:
        raw = make_email(
            html=f"<li>Product Details: {line}</li><li>{line}</li>", sender=TI_FROM, subject=line
        )
    parse_email_safely(raw)


def test_adversarial_lines_in_json_fields_finish() -> None:
    for line in ADVERSARIAL:
        row = dict.fromkeys(PAYLOADS[0]["RESPONSE"], line)
        parse_safely({"CODE": 200, "RESPONSE": row})
        parse_safely(
            dict.fromkeys(("name", "phone", "email", "quantity", "pincode", "country"), line)
        )


# ---------------------------------------------------------------- hostile email shapes


def test_five_megabyte_attachment_beside_a_normal_enquiry_still_gives_the_lead() -> None:
    raw = make_email(html=Enquiry().html(), wrap="mixed")
    attachment = (
        b"--outer-b0und\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\n"
    )
    raw = raw.replace(
        b"--outer-b0und--",
        attachment + base64.encodebytes(b"\x00" * 3_750_000) + b"--outer-b0und--",
    )
    assert len(raw) > 5_000_000
    lead = parse_email_safely(raw)
    assert (lead["kind"], lead["name"]) == ("lead", "Sunil Rao")


def test_five_megabyte_html_body_is_reported_not_truncated() -> None:
    html = Enquiry().html().replace("</body>", "<p>" + "x" * 5_000_000 + "</p></body>")
    result = parse_email_safely(make_email(html=html, cte="8bit"))
    assert result["kind"] == "error"
    assert f"more than the {MAX_TEXT_BYTES:,}" in result["error"]


def test_five_megabyte_mail_from_another_domain_is_ignored_without_reading_it() -> None:
    raw = make_email(html="x" * 5_000_000, sender="big@shop.example.com", cte="8bit")
    assert parse_email_safely(raw)["kind"] == "ignored"


def test_two_hundred_nested_multiparts() -> None:
    body = b"Content-Type: text/html\n\n" + Enquiry().html().encode()
    for depth in range(200):
        body = f'Content-Type: multipart/mixed; boundary="n{depth}"\n\n--n{depth}\n'.encode() + body
        body += f"\n--n{depth}--\n".encode()
    raw = f"From: {make_email.__kwdefaults__['sender']}\nSubject: Enquiry for X\n".encode() + body
    result = parse_email_safely(raw)
    assert result["kind"] == "error"
    assert "no readable text or HTML part" in result["error"]


def test_two_hundred_sibling_parts() -> None:
    parts = b"".join(b"--s\nContent-Type: image/gif\n\nGIF89a\n" for _ in range(200))
    html = b"--s\nContent-Type: text/html\n\n" + Enquiry().html().encode() + b"\n--s--\n"
    raw = b'From: buyershelp+enq@indiamart.com\nSubject: Enquiry for X\nContent-Type: multipart/mixed; boundary="s"\n\n'
    assert parse_email_safely(raw + parts + html)["name"] == "Sunil Rao"


@pytest.mark.parametrize(
    "body",
    [
        b"!!!not*base64@@@" * 1000,
        b"a",
        b"====",
        base64.encodebytes(b"\xff\xfe\x00garbage" * 500),
    ],
)
def test_invalid_base64_body(body: bytes) -> None:
    raw = (
        b"From: buyershelp+enq@indiamart.com\nSubject: Enquiry for X\n"
        b"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + body
    )
    assert parse_email_safely(raw)["kind"] == "error"


def test_a_million_line_breaks() -> None:
    html = Enquiry().html().replace("<p>Regards,</p>", "<br>" * 400_000 + "<p>Regards,</p>")
    assert parse_email_safely(make_email(html=html, cte="8bit"))["name"] == "Sunil Rao"


def test_binary_garbage_after_valid_headers() -> None:
    raw = (
        b"From: buyleads@indiamart.com\nSubject: Buyer Details for X\n\n" + bytes(range(256)) * 2000
    )
    assert parse_email_safely(raw)["kind"] == "error"


def test_header_bombs() -> None:
    raw = (
        b"From: "
        + b"a" * 1_000_000
        + b"@indiamart.com\nSubject: "
        + b"=?utf-8?q?x?= " * 100_000
        + b"\n\nbody"
    )
    parse_email_safely(raw)
    raw = b"".join(b"X-H%d: v\n" % i for i in range(100_000)) + b"From: a@b.example\n\nbody"
    assert parse_email_safely(raw)["kind"] == "ignored"


def test_unknown_and_hostile_charset_names() -> None:
    for charset in ("rot13", "zlib", "base64", "utf-7", "x" * 5000, "idna", '"; boundary=x'):
        raw = make_email(html=Enquiry().html().encode(), charset=charset, cte="8bit")
        assert parse_email_safely(raw)["name"] == "Sunil Rao"  # an unusable name falls back


# ---------------------------------------------------------------- JSON

_ENVELOPE_KEYS = {"CODE", "STATUS", "MESSAGE", "TOTAL_RECORDS", "RESPONSE"}
_GENERIC_KEYS = [
    "name",
    "phone",
    "email",
    "specs",
    "verified",
    "quantity",
    "received_at",
    "source",
    "x",
]
_KEYS = st.sampled_from(
    [*sorted({*PAYLOADS[0]["RESPONSE"], *PAYLOADS[7][0], *_ENVELOPE_KEYS}), *_GENERIC_KEYS]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
    | st.sampled_from(["200", "204", "401", "+91-9845600066", "2026-03-02 11:17:14", "BUYER"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(_KEYS | st.text(max_size=8), children, max_size=8)
    ),
    max_leaves=40,
)


@FUZZ
@given(_JSON)
def test_arbitrary_json_values(value: object) -> None:
    parse_safely(value)
    parse_safely([value])
    parse_safely({"CODE": 200, "RESPONSE": value})


@FUZZ
@given(_JSON, st.sampled_from(["push", "pull", "api", None, "email", ""]))
def test_arbitrary_json_bytes_and_channels(value: object, channel: str | None) -> None:
    results = parse_json_bytes(json.dumps(value).encode(), channel=channel)
    for result in results:
        assert_contract(result)


def _rows(payload: Any) -> list[dict[str, Any]]:
    rows = payload if isinstance(payload, list) else payload.get("RESPONSE", payload)
    return [row for row in (rows if isinstance(rows, list) else [rows]) if isinstance(row, dict)]


ROWS = [row for payload in PAYLOADS for row in _rows(payload)]


@FUZZ
@given(st.sampled_from(ROWS), st.data())
def test_payload_rows_with_fields_replaced(row: dict[str, Any], data: st.DataObject) -> None:
    for key in data.draw(st.lists(st.sampled_from(sorted(row)), max_size=6)):
        row = {**row, key: data.draw(_JSON)}
    results = parse_safely(row)
    assert len(results) == 1, "one lead row gives exactly one result"


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_json_bytes(data: bytes) -> None:
    for result in parse_json_bytes(data):
        assert_contract(result)


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_in_every_position(depth: int) -> None:
    nested: Any = "x"
    for _ in range(depth):
        nested = [nested]
    parse_safely(nested)
    parse_safely({"CODE": 200, "RESPONSE": nested})
    parse_safely({"name": nested, "phone": nested, "specs": {"a": nested}, "verified": nested})
    assert parse_json_bytes(b'{"RESPONSE": ' + b"[" * depth + b"]" * depth + b"}")


def test_bytes_like_inputs_are_emails() -> None:
    raw = Path(SAMPLES / "email" / "01-direct-enquiry-qp.eml").read_bytes()
    assert parse(bytearray(raw)) == parse(memoryview(raw)) == parse(raw)
