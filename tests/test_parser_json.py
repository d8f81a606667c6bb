"""IndiaMART push/pull payloads, legacy v1 rows and generic lead JSON (FORMATS 5, 6, 8)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_parser_contract import assert_contract

from leadtui.parser import parse, parse_json_bytes


def lead_row(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "UNIQUE_QUERY_ID": "2790001234",
        "QUERY_TYPE": "W",
        "QUERY_TIME": "2026-03-02 11:17:14",
        "SENDER_NAME": "Rohit Verma",
        "SENDER_MOBILE": "+91-9876500011",
        "SENDER_EMAIL": "rohit.verma@example.in",
        "SUBJECT": "Requirement for Red Clay Bricks",
        "SENDER_COMPANY": "Verma Builders",
        "SENDER_ADDRESS": "Baner, Pune, Maharashtra, 411045",
        "SENDER_CITY": "Pune",
        "SENDER_STATE": "Maharashtra",
        "SENDER_PINCODE": "411045",
        "SENDER_COUNTRY_ISO": "IN",
        "QUERY_PRODUCT_NAME": "Red Clay Bricks",
        "QUERY_MESSAGE": "I want to buy Red Clay Bricks.<br>Quantity : 5000 Piece<br>",
        "QUERY_MCAT_NAME": "Clay Bricks",
    }
    row.update(over)
    return row


def push(row: dict[str, Any]) -> dict[str, Any]:
    return {"CODE": 200, "STATUS": "SUCCESS", "RESPONSE": row}


def parse_ok(value: object, **kwargs: Any) -> list[dict[str, Any]]:
    results = parse(value, **kwargs)
    for result in results:
        assert_contract(result)
    return results


def one_lead(value: object, **kwargs: Any) -> dict[str, Any]:
    results = parse_ok(value, **kwargs)
    assert [r["kind"] for r in results] == ["lead"]
    return results[0]


# ---------------------------------------------------------------- envelopes and channels


def test_push_object_and_one_element_list_give_the_same_lead() -> None:
    as_object = one_lead(push(lead_row()))
    as_list = one_lead({"CODE": 200, "STATUS": "SUCCESS", "RESPONSE": [lead_row()]})
    assert as_object == as_list
    assert (as_object["channel"], as_object["external_id"]) == ("push", "2790001234")


def test_numeric_ids_and_codes_become_strings_and_numbers() -> None:
    lead = one_lead(
        {"CODE": "200", "STATUS": "SUCCESS", "RESPONSE": lead_row(UNIQUE_QUERY_ID=2790005678)}
    )
    assert lead["external_id"] == "2790005678"
    lead = one_lead(push(lead_row(UNIQUE_QUERY_ID=2790005678.0, CALL_DURATION=121)))
    assert (lead["external_id"], lead["call_duration"]) == ("2790005678", 121)


def test_pull_response_gives_one_lead_per_row_in_order() -> None:
    response = {
        "CODE": 200,
        "STATUS": "SUCCESS",
        "MESSAGE": "",
        "TOTAL_RECORDS": 3,
        "RESPONSE": [lead_row(UNIQUE_QUERY_ID=str(n)) for n in (1, 2, 3)],
    }
    results = parse_ok(response)
    assert [(r["channel"], r["external_id"]) for r in results] == [
        ("pull", "1"),
        ("pull", "2"),
        ("pull", "3"),
    ]


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE"])
def test_pull_204_is_no_leads_whatever_status_says(status: str) -> None:
    message = "There are no leads in the given time duration. Please try for a different duration."
    assert (
        parse_ok(
            {"CODE": 204, "STATUS": status, "MESSAGE": message, "TOTAL_RECORDS": 0, "RESPONSE": []}
        )
        == []
    )


@pytest.mark.parametrize(
    ("code", "message", "error"),
    [
        (400, "Invalid date format", "pull API error 400: Invalid date format"),
        (401, "Invalid key or key expired", "pull API error 401: Invalid key or key expired"),
        (
            429,
            "It is advised to hit this API once in every 5 minutes, but it seems that you have crossed this limit.",
            "pull API error 429: It is advised to hit this API once in every 5 minutes",
        ),
        (500, "", "pull API error 500: no MESSAGE given"),
    ],
)
def test_pull_error_codes_carry_the_api_message(code: int, message: str, error: str) -> None:
    results = parse_ok(
        {
            "CODE": code,
            "STATUS": "FAILURE",
            "MESSAGE": message,
            "TOTAL_RECORDS": 0,
            "RESPONSE": None,
        }
    )
    assert len(results) == 1
    assert results[0]["kind"] == "error"
    assert results[0]["error"].startswith(error)


@pytest.mark.parametrize(
    ("value", "channel", "expected"),
    [
        (push(lead_row()), None, "push"),
        ({**push(lead_row()), "MESSAGE": ""}, None, "pull"),
        ({**push(lead_row()), "TOTAL_RECORDS": 1}, None, "pull"),
        ([{"QUERY_ID": "1", "SENDERNAME": "Anil"}], None, "pull"),
        ({"name": "Asha", "phone": "9822012345"}, None, "api"),
        (push(lead_row()), "pull", "pull"),
        ({"name": "Asha", "phone": "9822012345"}, "push", "push"),
    ],
)
def test_channel_is_inferred_from_the_envelope_or_given(
    value: object, channel: str | None, expected: str
) -> None:
    assert one_lead(value, channel=channel)["channel"] == expected


def test_unknown_channel_is_an_error_not_a_guess() -> None:
    assert parse(push(lead_row()), channel="email") == [
        {"kind": "error", "error": "unknown channel 'email' (expected push, pull or api)"}
    ]


def test_channel_is_ignored_for_email() -> None:
    raw = b"From: a@shop.example.com\nSubject: hi\nMessage-ID: <m@x>\n\nhello"
    assert parse(raw, channel="push")[0]["kind"] == "ignored"


# ---------------------------------------------------------------- v2 lead fields


def test_every_field_may_be_missing_empty_or_null() -> None:
    lead = one_lead(
        push(
            {
                "UNIQUE_QUERY_ID": "1",
                "SENDER_NAME": None,
                "SENDER_MOBILE": "",
                "QUERY_MESSAGE": None,
            }
        )
    )
    assert lead["external_id"] == "1"
    assert all(
        lead[key] is None for key in ("name", "phone", "email", "product", "message", "received_at")
    )
    assert (lead["specs"], lead["verified"]) == ({}, [])


def test_phones_and_emails_pick_the_first_two_different_valid_ones() -> None:
    lead = one_lead(
        push(
            lead_row(
                SENDER_MOBILE="+91-98XXXXXX01",  # masked: skipped, never phone_alt
                SENDER_MOBILE_ALT="+91-9876500011",
                SENDER_PHONE="09876500011",  # the same number written another way
                SENDER_PHONE_ALT="011-41234567",
                SENDER_EMAIL="Not Provided",
                SENDER_EMAIL_ALT="Purchase@Verma.example.in",
            )
        )
    )
    assert (lead["phone"], lead["phone_alt"]) == ("+919876500011", "+911141234567")
    assert (lead["email"], lead["email_alt"]) == ("purchase@verma.example.in", None)


def test_address_pincode_and_state() -> None:
    lead = one_lead(
        push(
            lead_row(
                SENDER_ADDRESS=" , Baner,  Pune, MH,    411045 ,",
                SENDER_PINCODE="",
                SENDER_STATE="MH",
            )
        )
    )
    assert (lead["address"], lead["pincode"], lead["state"]) == (
        "Baner, Pune, MH, 411045",
        "411045",
        "Maharashtra",
    )


def test_product_falls_back_to_the_subject_and_unknown_query_types_are_kept() -> None:
    lead = one_lead(
        push(
            lead_row(
                QUERY_PRODUCT_NAME="", SUBJECT="Requirement for Paver Blocks", QUERY_TYPE="XYZ"
            )
        )
    )
    assert (lead["product"], lead["query_type"]) == ("Paver Blocks", "XYZ")
    lead = one_lead(push(lead_row(QUERY_PRODUCT_NAME="", SUBJECT="Buyer Call")))
    assert lead["product"] is None


def test_query_message_rows_map_per_the_rules() -> None:
    message = (
        "Requirement for Mangalore Roof Tiles\n Width : 10 inch<br>Quantity : Approx 2000 <br>"
        "Probable Order Value : Rs. 1 - 2 Lakh<br>Why do you need this : For Business Use<br>"
    )
    lead = one_lead(push(lead_row(QUERY_MESSAGE=message)))
    assert {
        k: lead[k] for k in ("message", "quantity", "order_value", "requirement_type", "specs")
    } == {
        "message": "Requirement for Mangalore Roof Tiles",
        "quantity": None,
        "order_value": "Rs. 1 - 2 Lakh",
        "requirement_type": "For Business Use",
        "specs": {"Width": "10 inch", "Quantity": "Approx 2000"},
    }


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("2026-03-02 11:17:14", "2026-03-02T11:17:14+05:30"),
        ("02-Mar-2026 11:17:14", "2026-03-02T11:17:14+05:30"),
        ("02-Mar-202611:17:14", "2026-03-02T11:17:14+05:30"),
        ("not a time", None),
    ],
)
def test_query_time_formats(written: str, iso: str | None) -> None:
    assert one_lead(push(lead_row(QUERY_TIME=written)))["received_at"] == iso


def test_call_fields() -> None:
    lead = one_lead(
        push(lead_row(QUERY_TYPE="P", CALL_DURATION="121", RECEIVER_MOBILE="8040000044"))
    )
    assert (lead["call_duration"], lead["receiver_phone"]) == (121, "+918040000044")
    lead = one_lead(push(lead_row(CALL_DURATION="²", RECEIVER_MOBILE="12")))
    assert (lead["call_duration"], lead["receiver_phone"]) == (None, None)


def test_hostile_text_in_api_fields() -> None:
    lead = one_lead(
        push(
            lead_row(
                SENDER_NAME="\x1b[31mRAJAT\x1b[0m",
                SENDER_COMPANY="[bold]Boss[/bold]\u202e",
                QUERY_MESSAGE="\x1b]52;c;cm0gLXJmIH4=\x07Hello<br>&lt;script&gt;alert(1)&lt;/script&gt;<br>[@click=app.quit]",
            )
        )
    )
    assert lead["name"] == "[31mRAJAT[0m"  # the escape's "m" is lower-case: not re-cased
    assert lead["company"] == "[bold]Boss[/bold]"
    assert (
        lead["message"] == "]52;c;cm0gLXJmIH4=Hello\n<script>alert(1)</script>\n[@click=app.quit]"
    )


def test_one_bad_row_does_not_lose_the_others() -> None:
    results = parse_ok(
        {"CODE": 200, "MESSAGE": "", "RESPONSE": [lead_row(), "junk", {"FOO": 1}, lead_row()]}
    )
    assert [r["kind"] for r in results] == ["lead", "error", "error", "lead"]
    assert "not an object" in results[1]["error"]
    assert "FOO" in results[2]["error"]


# ---------------------------------------------------------------- legacy v1


def test_v1_rows_with_am_pm_times() -> None:
    rows = [
        {
            "QUERY_ID": "1",
            "QTYPE": "W",
            "SENDERNAME": "Anil Mehta",
            "DATE_TIME_RE": "16-Apr-2022 12:05:00 AM",
            "MOB": "+91-9988700055",
        },
        {
            "QUERY_ID": 2,
            "QTYPE": "P",
            "SENDERNAME": "BUYER",
            "DATE_TIME_RE": "16-Apr-2022 01:15:40 PM",
            "MOB": "9988700056",
            "ENQ_CALL_DURATION": "30",
            "ENQ_RECEIVER_MOB": "9810000044",
            "ENQ_ADDRESS": "Station Road, Jaipur, 302001",
        },
    ]
    first, second = parse_ok(rows)
    assert (first["external_id"], first["received_at"], first["name"]) == (
        "1",
        "2022-04-16T00:05:00+05:30",
        "Anil Mehta",
    )
    assert {
        k: second[k]
        for k in (
            "external_id",
            "received_at",
            "name",
            "call_duration",
            "receiver_phone",
            "pincode",
            "category",
        )
    } == {
        "external_id": "2",
        "received_at": "2022-04-16T13:15:40+05:30",
        "name": None,
        "call_duration": 30,
        "receiver_phone": "+919810000044",
        "pincode": "302001",
        "category": None,
    }


def test_empty_list_is_no_leads() -> None:
    assert parse([]) == []


# ---------------------------------------------------------------- generic lead JSON


def test_generic_lead_with_missing_fields() -> None:
    lead = one_lead({"name": "ASHA KULKARNI", "phone": "098220 12345", "state": "Maharashtra"})
    assert {
        k: lead[k]
        for k in ("source", "channel", "name", "phone", "state", "country", "email", "received_at")
    } == {
        "source": "other",
        "channel": "api",
        "name": "Asha Kulkarni",
        "phone": "+919822012345",
        "state": "Maharashtra",
        "country": None,  # no field is inferred
        "email": None,
        "received_at": None,
    }


def test_generic_lead_normalises_every_field() -> None:
    lead = one_lead(
        {
            "source": "WhatsApp",
            "external_id": 42,
            "phone": "+91 98220 12345",
            "phone_alt": "98220 12345",
            "email": "Asha@Example.com",
            "quantity": "1,500 Square Feet",
            "specs": {"Colour": "Grey", "Empty": ""},
            "verified": ["gst", "phone", "nonsense"],
            "call_duration": "45",
            "message": "Line one\r\n\r\nLine\ttwo",
            "pincode": "411 045",
        }
    )
    assert {
        k: lead[k]
        for k in (
            "source",
            "external_id",
            "phone",
            "phone_alt",
            "email",
            "quantity",
            "unit",
            "specs",
            "verified",
            "call_duration",
            "message",
            "pincode",
        )
    } == {
        "source": "whatsapp",
        "external_id": "42",
        "phone": "+919822012345",
        "phone_alt": None,
        "email": "asha@example.com",
        "quantity": "1500",
        "unit": "Square Feet",
        "specs": {"Colour": "Grey"},
        "verified": ["phone", "gst"],
        "call_duration": 45,
        "message": "Line one\nLine two",
        "pincode": "411045",
    }


def test_generic_lead_with_nothing_to_contact_or_sell_is_an_error() -> None:
    results = parse_ok({"source": "website", "city": "Pune"})
    assert results[0]["kind"] == "error"
    assert "without a name, phone, email" in results[0]["error"]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"foo": 1, "bar": 2}, "unknown JSON shape: an object with keys foo, bar"),
        ({}, "unknown JSON shape: an empty object"),
        ([1, 2, 3], "unknown JSON shape: a list of int"),
        (None, "unknown JSON shape: null"),
        (42, "unknown JSON shape: int"),
        ("Subject: an email as text", "a JSON string is not a lead"),
    ],
)
def test_unknown_json_shapes_are_errors_that_say_what_came(value: object, error: str) -> None:
    results = parse_ok(value)
    assert len(results) == 1
    assert results[0]["error"].startswith(error)


# ---------------------------------------------------------------- parse_json_bytes


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "not JSON: the body is empty"),
        (b"\xff\xfe{}", "not JSON: invalid UTF-8 at byte 0"),
        (b'{"CODE": 200,', "not JSON: Expecting"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON: nested too deeply"),
        (b"1" * 5000, "not JSON: Exceeds the limit"),
    ],
)
def test_parse_json_bytes_turns_bad_bodies_into_errors(data: bytes, error: str) -> None:
    results = parse_json_bytes(data)
    assert len(results) == 1
    assert results[0]["kind"] == "error"
    assert results[0]["error"].startswith(error)


def test_parse_json_bytes_accepts_a_bom_and_passes_the_channel() -> None:
    data = b"\xef\xbb\xbf" + json.dumps(push(lead_row())).encode()
    assert one_lead(push(lead_row()))["channel"] == "push"
    assert parse_json_bytes(data, channel="pull")[0]["channel"] == "pull"


def test_deeply_nested_decoded_value_is_an_error_not_a_crash() -> None:
    nested: Any = {}
    for _ in range(50_000):
        nested = {"RESPONSE": nested}
    results = parse(nested)
    assert results == [{"kind": "error", "error": results[0]["error"]}]
