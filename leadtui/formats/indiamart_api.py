"""IndiaMART push and pull API payloads (FORMATS 5 and 6): envelopes and lead rows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadtui.formats.places import iso_country, state_name
from leadtui.formats.requirement import apply_pairs, split_query_message
from leadtui.formats.results import Result, error, finish_lead, guarded, new_lead
from leadtui.formats.text import (
    api_time,
    as_text,
    clean_text,
    first_two,
    normalize_email,
    normalize_name,
    normalize_phone,
    small_int,
    some_keys,
    text_reader,
)

Row = Mapping[str, Any]

# The envelope (6.2) and the fields that tell a v2 lead row or a legacy v1 row.
_PULL_MARKERS = ("TOTAL_RECORDS", "MESSAGE")
V2_MARKERS = frozenset(
    {"UNIQUE_QUERY_ID", "QUERY_TYPE", "QUERY_TIME", "SENDER_NAME", "SENDER_MOBILE"}
)
V1_MARKERS = frozenset({"QUERY_ID", "QTYPE", "SENDERNAME", "DATE_TIME_RE", "ENQ_MESSAGE", "MOB"})


def is_envelope(obj: Mapping[str, Any]) -> bool:
    return "RESPONSE" in obj or "CODE" in obj


def envelope_channel(obj: Mapping[str, Any]) -> str:
    """FORMATS 1.1: ``TOTAL_RECORDS`` or ``MESSAGE`` beside ``RESPONSE`` is pull, else push."""
    return "pull" if any(key in obj for key in _PULL_MARKERS) else "push"


def is_v2_row(obj: Mapping[str, Any]) -> bool:
    return not V2_MARKERS.isdisjoint(obj)


def is_v1_row(obj: Mapping[str, Any]) -> bool:
    return not V1_MARKERS.isdisjoint(obj)


def parse_envelope(obj: Mapping[str, Any], channel: str) -> list[Result]:
    """``{"CODE", "STATUS", ["MESSAGE", "TOTAL_RECORDS",] "RESPONSE"}`` → leads or an error."""
    code = small_int(as_text(obj.get("CODE")))
    if code is None and obj.get("CODE") not in (None, ""):
        return [
            error(f"{channel} API envelope with an unreadable CODE: {as_text(obj.get('CODE'))!r}")
        ]
    if code == 204:
        return []  # no leads in the window; STATUS may say FAILURE, it does not matter
    if code not in (None, 200):
        message = clean_text(as_text(obj.get("MESSAGE"))) or "no MESSAGE given"
        return [error(f"{channel} API error {code}: {message}")]
    rows = obj.get("RESPONSE")
    if rows in (None, "", []):
        return []
    if isinstance(rows, Mapping):
        rows = [rows]
    if not isinstance(rows, list):
        return [
            error(f"{channel} API envelope whose RESPONSE is a {type(rows).__name__}, not leads")
        ]
    return [parse_row(row, channel) for row in rows]


def parse_row(row: object, channel: str) -> Result:
    """One lead row of any API generation, by its field names."""
    if not isinstance(row, Mapping):
        return error(f"{channel} API lead that is a {type(row).__name__}, not an object")
    if is_v2_row(row):
        return guarded("IndiaMART API v2 lead", parse_v2_row, row, channel)
    if is_v1_row(row):
        return guarded("IndiaMART API v1 row", parse_v1_row, row, channel)
    keys = some_keys(row)
    return error(f"{channel} API row without IndiaMART lead fields (keys: {keys or 'none'})")


def _pincode(pincode: str | None, address: str | None) -> str | None:
    digits = (pincode or "").replace(" ", "")
    if len(digits) == 6 and digits.isdigit():
        return digits
    if address and (match := re.search(r"(?<!\d)(\d{6})$", address)):
        return match[1]
    return None


def _address(text: str | None) -> str | None:
    """2.6: whitespace collapsed, leading and trailing commas and spaces removed."""
    return (text.strip(", ") or None) if text else None


def _requirement(lead: Result, message: str | None) -> None:
    if message:
        free, pairs = split_query_message(message)
        apply_pairs(lead, pairs)
        lead["message"] = "\n".join(free) or None


@dataclass(frozen=True, slots=True)
class _Columns:
    """Which field of a lead row holds each lead field: the v2 and v1 rows name them apart."""

    external_id: str
    query_type: str
    time: str
    name: str
    company: str
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    address: str
    city: str
    state: str
    pincode: str | None  # v1 rows have none: the address's last six digits
    country: str
    product: str
    message: str
    call_duration: str
    receiver_phone: str


# Lead field → (the v2 row's field, the v1 row's field), side by side.
_FIELDS: dict[str, tuple[Any, Any]] = {
    "external_id": ("UNIQUE_QUERY_ID", "QUERY_ID"),
    "query_type": ("QUERY_TYPE", "QTYPE"),
    "time": ("QUERY_TIME", "DATE_TIME_RE"),
    "name": ("SENDER_NAME", "SENDERNAME"),
    "company": ("SENDER_COMPANY", "GLUSR_USR_COMPANYNAME"),
    "phones": (
        ("SENDER_MOBILE", "SENDER_MOBILE_ALT", "SENDER_PHONE", "SENDER_PHONE_ALT"),
        ("MOB", "MOBILE_ALT", "PHONE", "PHONE_ALT"),
    ),
    "emails": (("SENDER_EMAIL", "SENDER_EMAIL_ALT"), ("SENDEREMAIL", "EMAIL_ALT")),
    "address": ("SENDER_ADDRESS", "ENQ_ADDRESS"),
    "city": ("SENDER_CITY", "ENQ_CITY"),
    "state": ("SENDER_STATE", "ENQ_STATE"),
    "pincode": ("SENDER_PINCODE", None),
    "country": ("SENDER_COUNTRY_ISO", "COUNTRY_ISO"),
    "product": ("QUERY_PRODUCT_NAME", "PRODUCT_NAME"),
    "message": ("QUERY_MESSAGE", "ENQ_MESSAGE"),
    "call_duration": ("CALL_DURATION", "ENQ_CALL_DURATION"),
    "receiver_phone": ("RECEIVER_MOBILE", "ENQ_RECEIVER_MOB"),
}
_V2 = _Columns(**{field: names[0] for field, names in _FIELDS.items()})
_V1 = _Columns(**{field: names[1] for field, names in _FIELDS.items()})


def _parse_columns(row: Row, channel: str, cols: _Columns) -> Result:
    get = text_reader(row)
    lead = new_lead("indiamart", channel)
    lead["external_id"] = get(cols.external_id)
    lead["query_type"] = get(cols.query_type)
    lead["received_at"] = api_time(get(cols.time))
    lead["name"] = normalize_name(get(cols.name))
    lead["company"] = get(cols.company)
    lead["phone"], lead["phone_alt"] = first_two(normalize_phone(get(k)) for k in cols.phones)
    lead["email"], lead["email_alt"] = first_two(normalize_email(get(k)) for k in cols.emails)
    lead["address"] = _address(get(cols.address))
    lead["city"] = get(cols.city)
    lead["state"] = state_name(get(cols.state)) or get(cols.state)
    pincode = get(cols.pincode) if cols.pincode else None
    lead["pincode"] = _pincode(pincode, lead["address"])
    lead["country"] = iso_country(get(cols.country))
    lead["product"] = get(cols.product)
    _requirement(lead, get_multiline(row, cols.message))
    lead["call_duration"] = small_int(get(cols.call_duration))
    lead["receiver_phone"] = normalize_phone(get(cols.receiver_phone))
    lead["member_since"] = get("IM_MEMBER_SINCE")
    return lead


def parse_v2_row(row: Row, channel: str) -> Result:
    """A push or pull v2 lead (FORMATS 5.2)."""
    lead = _parse_columns(row, channel, _V2)
    subject = clean_text(as_text(row.get("SUBJECT"))) or ""
    if not lead["product"] and subject.lower().startswith("requirement for "):
        lead["product"] = subject[len("requirement for ") :]
    lead["category"] = clean_text(as_text(row.get("QUERY_MCAT_NAME")))
    return finish_lead(lead)


def parse_v1_row(row: Row, channel: str) -> Result:
    """A legacy v1 row (FORMATS 6.3)."""
    return finish_lead(_parse_columns(row, channel, _V1))


def get_multiline(row: Row, key: str) -> str | None:
    """A field whose line breaks matter (``QUERY_MESSAGE``), uncleaned: 7.2 splits it."""
    return as_text(row.get(key))
