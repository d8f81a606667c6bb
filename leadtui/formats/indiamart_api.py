"""IndiaMART push and pull API payloads (FORMATS 5 and 6): envelopes and lead rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
    keys = ", ".join(sorted(str(key) for key in list(row)[:8]))
    return error(f"{channel} API row without IndiaMART lead fields (keys: {keys or 'none'})")


def _field(row: Row) -> Callable[[str], str | None]:
    def get(key: str) -> str | None:
        return clean_text(as_text(row.get(key)))

    return get


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


def parse_v2_row(row: Row, channel: str) -> Result:
    """A push or pull v2 lead (FORMATS 5.2)."""
    get = _field(row)
    lead = new_lead("indiamart", channel)
    lead["external_id"] = get("UNIQUE_QUERY_ID")
    lead["query_type"] = get("QUERY_TYPE")
    lead["received_at"] = api_time(get("QUERY_TIME"))
    lead["name"] = normalize_name(get("SENDER_NAME"))
    lead["company"] = get("SENDER_COMPANY")
    phones = ("SENDER_MOBILE", "SENDER_MOBILE_ALT", "SENDER_PHONE", "SENDER_PHONE_ALT")
    lead["phone"], lead["phone_alt"] = first_two(normalize_phone(get(key)) for key in phones)
    emails = ("SENDER_EMAIL", "SENDER_EMAIL_ALT")
    lead["email"], lead["email_alt"] = first_two(normalize_email(get(key)) for key in emails)
    lead["address"] = _address(get("SENDER_ADDRESS"))
    lead["city"] = get("SENDER_CITY")
    lead["state"] = state_name(get("SENDER_STATE")) or get("SENDER_STATE")
    lead["pincode"] = _pincode(get("SENDER_PINCODE"), lead["address"])
    lead["country"] = iso_country(get("SENDER_COUNTRY_ISO"))
    product = get("QUERY_PRODUCT_NAME")
    subject = get("SUBJECT") or ""
    if not product and subject.lower().startswith("requirement for "):
        product = subject[len("requirement for ") :]
    lead["product"] = product
    lead["category"] = get("QUERY_MCAT_NAME")
    _requirement(lead, get_multiline(row, "QUERY_MESSAGE"))
    lead["call_duration"] = small_int(get("CALL_DURATION"))
    lead["receiver_phone"] = normalize_phone(get("RECEIVER_MOBILE"))
    lead["member_since"] = get("IM_MEMBER_SINCE")
    return finish_lead(lead)


def parse_v1_row(row: Row, channel: str) -> Result:
    """A legacy v1 row (FORMATS 6.3)."""
    get = _field(row)
    lead = new_lead("indiamart", channel)
    lead["external_id"] = get("QUERY_ID")
    lead["query_type"] = get("QTYPE")
    lead["received_at"] = api_time(get("DATE_TIME_RE"))
    lead["name"] = normalize_name(get("SENDERNAME"))
    lead["company"] = get("GLUSR_USR_COMPANYNAME")
    phones = ("MOB", "MOBILE_ALT", "PHONE", "PHONE_ALT")
    lead["phone"], lead["phone_alt"] = first_two(normalize_phone(get(key)) for key in phones)
    emails = ("SENDEREMAIL", "EMAIL_ALT")
    lead["email"], lead["email_alt"] = first_two(normalize_email(get(key)) for key in emails)
    lead["address"] = _address(get("ENQ_ADDRESS"))
    lead["city"] = get("ENQ_CITY")
    lead["state"] = state_name(get("ENQ_STATE")) or get("ENQ_STATE")
    lead["pincode"] = _pincode(None, lead["address"])
    lead["country"] = iso_country(get("COUNTRY_ISO"))
    lead["product"] = get("PRODUCT_NAME")
    _requirement(lead, get_multiline(row, "ENQ_MESSAGE"))
    lead["call_duration"] = small_int(get("ENQ_CALL_DURATION"))
    lead["receiver_phone"] = normalize_phone(get("ENQ_RECEIVER_MOB"))
    lead["member_since"] = get("IM_MEMBER_SINCE")
    return finish_lead(lead)


def get_multiline(row: Row, key: str) -> str | None:
    """A field whose line breaks matter (``QUERY_MESSAGE``), uncleaned: 7.2 splits it."""
    return as_text(row.get(key))
