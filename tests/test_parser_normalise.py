"""FORMATS 2 and 7, rule by rule: the normalisers other modules reuse, and the tables."""

from __future__ import annotations

from typing import Any

import pytest

from leadtui.formats.places import Place, parse_location
from leadtui.formats.requirement import apply_pairs, split_one_line_specs, split_query_message
from leadtui.formats.results import new_lead
from leadtui.formats.text import api_time, header_time, subject_time
from leadtui.parser import clean_text, normalize_email, normalize_name, normalize_phone

# ---------------------------------------------------------------- 2.1 text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Sunil   Rao  ", "Sunil Rao"),
        ("Sunil\u00a0Rao", "Sunil Rao"),  # a non-breaking space counts as a space
        ("Sunil\tRao", "Sunil Rao"),  # a tab separates words; it does not glue them
        ("\x1b[31mRajat", "[31mRajat"),  # ESC goes; the printable rest stays literal
        ("\x1b]52;c;cm0gLXJmIH4=\x07Rajat", "]52;c;cm0gLXJmIH4=Rajat"),  # OSC 52 clipboard write
        ("Raj\u202eat\u202c", "Rajat"),  # bidi override and pop
        ("a\u2066b\u2069c", "abc"),  # bidi isolates
        ("nul\x00 del\x7f c1\x9b end", "nul del c1 end"),
        ("[bold]Boss[/bold] [@click=app.quit]x", "[bold]Boss[/bold] [@click=app.quit]x"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("राजेश\u200dवर्मा", "राजेश\u200dवर्मा"),  # a zero-width joiner shapes Devanagari: kept
        ("   ", None),
        ("\x00\x1b", None),
        ("", None),
        (None, None),
    ],
)
def test_clean_text_strips_controls_and_collapses_whitespace(
    raw: str | None, clean: str | None
) -> None:
    assert clean_text(raw) == clean


def test_clean_text_multiline_keeps_line_feeds_and_drops_empty_lines() -> None:
    raw = "Need 20 tanks.\r\n\r\n  Deliver   to\tsite. \n\x1b[2J\nThanks\r"
    assert clean_text(raw, multiline=True) == "Need 20 tanks.\nDeliver to site.\n[2J\nThanks"
    assert clean_text("one line", multiline=True) == "one line"
    assert clean_text("a\nb") == "a b"  # a single-line value never keeps a line feed


# ---------------------------------------------------------------- 2.2 names


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("DEEPAK SHARMA", "Deepak Sharma"),
        ("SURESH  REDDY", "Suresh Reddy"),
        ("deepak sharma", "deepak sharma"),  # only ALL-CAPITALS names are re-cased
        ("McDonald Rao", "McDonald Rao"),
        ("राजेश वर्मा", "राजेश वर्मा"),
        ("Noël D’Souza", "Noël D’Souza"),
        ("O'BRIEN", "O'brien"),  # the rule re-cases per space-separated word only
        ("BUYER", None),
        ("IndiaMART Buyer", None),
        ("indiamart buyer", None),
        ("", None),
    ],
)
def test_normalize_name(raw: str, name: str | None) -> None:
    assert normalize_name(raw) == name


# ---------------------------------------------------------------- 2.3 phones


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+91-9845600066", "+919845600066"),
        ("+91 98290 41736", "+919829041736"),
        ("+91-9845600066 (verified)", "+919845600066"),
        ("+971-501234567", "+971501234567"),
        ("+1-512-555-0148", "+15125550148"),
        ("+91-11-41234567", "+911141234567"),  # landline with STD code
        ("00971 50 123 4567", "+971501234567"),
        ("0091-9845600066", "+919845600066"),
        ("9845600066", "+919845600066"),
        ("98450 12345", "+919845012345"),
        ("09731045682", "+919731045682"),  # mobile with trunk 0
        ("011-41234567", "+911141234567"),  # landline with STD code
        ("098220 12345", "+919822012345"),
        ("919654321087", "+919654321087"),
        ("(080) 4000 0044", "+918040000044"),
        ("8040000044", "+918040000044"),
        ("+91 (0) 98456 00066", "+919845600066"),
    ],
)
def test_normalize_phone_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    "raw",
    [
        "+91-98XXXXXX01",  # masked: never guess
        "98xxxxxx01",
        "+91-98******01",
        "5845600066",  # 10 digits not starting 6-9
        "12345",
        "+91-98456",
        "+91-98456000667",
        "Not Provided",
        "call me",
        "9845600066 ext 12",
        "",
        "+",
        "0000000000",
        "9" * 40,
    ],
)
def test_normalize_phone_rejects_anything_else(raw: str) -> None:
    assert normalize_phone(raw) is None


# ---------------------------------------------------------------- 2.5 emails


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        ("Sunil.Rao@Example.com", "sunil.rao@example.com"),
        (" sunil.rao@example.com (verified) ", "sunil.rao@example.com"),
        ("mailto:a@b.in", "a@b.in"),
        ("<a@b.in>", "a@b.in"),
        ("Not Provided", None),
        ("NOT PROVIDED", None),
        ("sunil.rao.8b6cb9@reply.indiamart.com", None),  # IndiaMART's relay, not the buyer
        ("noreply@noreply.tradeindia.com", None),  # TradeIndia's placeholder
        ("no at sign", None),
        ("a@b", None),
        ("a@@b.com", None),
        ("", None),
    ],
)
def test_normalize_email(raw: str, email: str | None) -> None:
    assert normalize_email(raw) == email


# ---------------------------------------------------------------- 2.4 times


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2026-03-02 11:17:14", "2026-03-02T11:17:14+05:30"),
        ("02-Mar-2026 11:17:14", "2026-03-02T11:17:14+05:30"),
        ("02-Mar-202611:17:14", "2026-03-02T11:17:14+05:30"),
        ("16-Apr-2022 09:33:16 AM", "2022-04-16T09:33:16+05:30"),
        ("16-Apr-2022 09:33:16 PM", "2022-04-16T21:33:16+05:30"),
        ("16-Apr-2022 12:05:00 AM", "2022-04-16T00:05:00+05:30"),
        ("16-Apr-2022 12:30:00 PM", "2022-04-16T12:30:00+05:30"),
        ("2026-02-30 10:00:00", None),  # no such day
        ("yesterday", None),
        ("", None),
    ],
)
def test_api_time_is_ist(raw: str, iso: str | None) -> None:
    assert api_time(raw) == iso


@pytest.mark.parametrize(
    ("subject", "iso"),
    [
        (
            "Clay Roof Tiles Enquiry by Phone on 05-MAR-2026 at 04:12 PM",
            "2026-03-05T16:12:00+05:30",
        ),
        ("X Enquiry by Phone on 05-mar-2026 at 12:05 AM", "2026-03-05T00:05:00+05:30"),
        ("X Enquiry by Phone on 05-Mar-2026 at 12:30 PM", "2026-03-05T12:30:00+05:30"),
        ("X Enquiry by Phone on 05-MAR-2026 at 09:00 am", "2026-03-05T09:00:00+05:30"),
        ("X Enquiry by Phone on 05-MAR-20", None),  # truncated subject
    ],
)
def test_phone_enquiry_time_comes_from_the_subject(subject: str, iso: str | None) -> None:
    assert subject_time(subject) == iso


def test_header_time_keeps_the_offset() -> None:
    assert header_time("Mon, 02 Mar 2026 10:41:07 +0530") == "2026-03-02T10:41:07+05:30"
    assert header_time("Mon, 02 Mar 2026 05:11:07 +0000") == "2026-03-02T05:11:07+00:00"
    assert header_time("2 Mar 2026 10:41:07 -0700") == "2026-03-02T10:41:07-07:00"
    assert header_time("not a date") is None
    assert header_time("Mon, 31 Feb 2026 10:41:07 +0530") is None


# ---------------------------------------------------------------- 2.6 places


@pytest.mark.parametrize(
    ("line", "abroad", "place"),
    [
        ("Mysuru, Karnataka", False, Place("Mysuru", "Karnataka")),
        ("Kochi - 682016, Kerala", False, Place("Kochi", "Kerala", "682016")),
        ("Indore - 452001, MP", False, Place("Indore", "Madhya Pradesh", "452001")),
        ("Dehradun, UK", False, Place("Dehradun", "Uttarakhand")),  # UK is also a state code
        ("Baner, Pune, Maharashtra", False, Place("Pune", "Maharashtra")),
        ("Mysuru", False, Place("Mysuru")),
        ("Jaipur, India", False, Place("Jaipur", None, None, "IN")),
        ("Dubai, United Arab Emirates", True, Place("Dubai", None, None, "AE")),
        ("Austin, Texas, United States", True, Place("Austin", "Texas", None, "US")),
        ("London, United Kingdom", True, Place("London", None, None, "GB")),
        ("London, UK", True, Place("London", None, None, "GB")),
        ("Lagos, Nigeria", True, Place("Lagos", None, None, "NG")),
        ("Kathmandu, Nepal", False, Place("Kathmandu", None, None, "NP")),
        ("Reykjavik, Iceland", True, Place("Reykjavik", None, None, "IS")),  # the full ISO table
    ],
)
def test_parse_location(line: str, abroad: bool, place: Place) -> None:
    assert parse_location(line, abroad=abroad) == place


# ---------------------------------------------------------------- 2.7 and 7 requirement rows


def _pairs(*pairs: tuple[str, str]) -> dict[str, Any]:
    lead = new_lead("indiamart", "email")
    apply_pairs(lead, pairs)
    return {k: lead[k] for k in ("quantity", "unit", "order_value", "requirement_type", "specs")}


def test_pairs_map_to_fields_case_insensitively() -> None:
    assert _pairs(
        ("QUANTITY", "2000 Piece"),
        ("Probable order value :", "Rs. 1 - 2 Lakh"),
        ("type  of requirement", "Business Use"),
        ("GSM", "180"),
        ("Usage/Application", "Residential"),
        ("Colour", ""),  # empty values are dropped
    ) == {
        "quantity": "2000",
        "unit": "Piece",
        "order_value": "Rs. 1 - 2 Lakh",
        "requirement_type": "Business Use",
        "specs": {"GSM": "180", "Usage/Application": "Residential"},
    }


def test_quantity_numbers_lose_separators_and_the_unit_label_wins() -> None:
    assert _pairs(("Qty", "1,500"))["quantity"] == "1500"
    assert _pairs(("Quantity", "2.5 Ton"))["unit"] == "Ton"
    assert _pairs(("Quantity", "1,50,000 Piece"))["quantity"] == "150000"
    both = _pairs(("Quantity Unit", "Box"), ("Quantity", "20 Piece"))
    assert (both["quantity"], both["unit"]) == ("20", "Box")
    both = _pairs(("Quantity", "20 Piece"), ("Unit", "Box"))
    assert (both["quantity"], both["unit"]) == ("20", "Box")


def test_non_numeric_quantity_goes_to_specs() -> None:
    odd = _pairs(("Quantity", "5-10 truckloads"))
    assert odd["quantity"] is None
    assert odd["specs"] == {"Quantity": "5-10 truckloads"}


def test_query_message_classic_template() -> None:
    free, pairs = split_query_message(
        "I want to buy Red Clay Bricks.\r\rKindly send me price and other details.<br> Quantity :"
        "   5000<BR/> Quantity Unit :   Piece<br >Preferred Location: Suppliers from Local Area<br>"
    )
    assert free == ["I want to buy Red Clay Bricks.", "Kindly send me price and other details."]
    assert pairs == [
        ("Quantity", "5000"),
        ("Quantity Unit", "Piece"),
        ("Preferred Location", "Suppliers from Local Area"),
    ]


def test_query_message_decodes_entities_and_needs_a_short_label() -> None:
    free, pairs = split_query_message(
        "Size &amp; finish :&nbsp;10 mm<br>" + "x" * 61 + ": not a label<br>: no label"
    )
    assert pairs == [("Size & finish", "10 mm")]
    assert free == ["x" * 61 + ": not a label", ": no label"]


def test_one_line_specs_split_at_known_labels_longest_first() -> None:
    assert split_one_line_specs(
        "Quantity : 8000 Piece Size : 9 Inch Probable Order Value : Rs. 40,000 - 60,000"
    ) == [
        ("Quantity", "8000 Piece"),
        ("Size", "9 Inch"),
        ("Probable Order Value", "Rs. 40,000 - 60,000"),
    ]
    assert split_one_line_specs(
        "Type : Hollow Probable Requirement Type : Business Use Panel Type : Flat"
    ) == [("Type", "Hollow"), ("Probable Requirement Type", "Business Use"), ("Panel Type", "Flat")]


def test_one_line_specs_keep_an_unknown_label_in_the_preceding_value() -> None:
    assert split_one_line_specs("Quantity : 10 Piece Edge Profile : Bevelled Size : 2 ft") == [
        ("Quantity", "10 Piece Edge Profile : Bevelled"),
        ("Size", "2 ft"),
    ]
