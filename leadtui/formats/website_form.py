"""Website forms and lead JSON sent to ``POST /api/leads``: form aliases and the lead contract check.

Pure payload → lead rules, beside the parser that reads the result: a form's fields become a
generic lead (FORMATS 8) by :data:`FORM_ALIASES`, and :func:`check_lead` names every field of
such a lead the parser could not use, so the HTTP ingest can refuse it with one answer that
lists them all. No I/O here: the ingest reads the request and answers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from leadtui.formats.places import iso_country
from leadtui.formats.results import LEAD_FIELDS, SOURCES
from leadtui.formats.text import (
    as_text,
    clean_text,
    normalize_email,
    normalize_name,
    normalize_phone,
)

ORIGINAL_KEY = "request"  # in a lead JSON leadtui made: the request it was made from

# The lead fields a client may send (FORMATS 1.1 without kind and channel, which leadtui sets).
INPUT_FIELDS = tuple(f for f in LEAD_FIELDS if f not in {"kind", "channel"})
_PHONE_FIELDS = frozenset({"phone", "phone_alt", "receiver_phone"})
_EMAIL_FIELDS = frozenset({"email", "email_alt"})
REQUIRED_ONE_OF = ("name", "phone", "email")

# Website form field names (lower-case, "-", "." and spaces read as "_") -> contract field.
FORM_ALIASES: dict[str, str] = {
    **{f: f for f in INPUT_FIELDS if f not in {"specs", "verified"}},
    **dict.fromkeys(
        (
            "full_name",
            "fullname",
            "your_name",
            "contact_name",
            "contact_person",
            "customer_name",
            "buyer_name",
        ),
        "name",
    ),
    **dict.fromkeys(
        (
            "mobile",
            "mobile_number",
            "mobile_no",
            "phone_number",
            "phone_no",
            "tel",
            "telephone",
            "contact_number",
            "contact_no",
            "your_phone",
            "your_mobile",
            "whatsapp",
            "whatsapp_number",
        ),
        "phone",
    ),
    **dict.fromkeys(("alternate_phone", "alt_phone", "phone2", "mobile2"), "phone_alt"),
    **dict.fromkeys(("e_mail", "email_address", "email_id", "your_email", "mail"), "email"),
    **dict.fromkeys(
        ("company_name", "organisation", "organization", "business_name", "firm"), "company"
    ),
    **dict.fromkeys(("town", "location"), "city"),
    **dict.fromkeys(("pin", "pin_code", "zip", "zipcode", "zip_code", "postal_code"), "pincode"),
    **dict.fromkeys(
        ("interest", "interested_in", "product_name", "service", "services"), "product"
    ),
    **dict.fromkeys(
        (
            "comments",
            "comment",
            "your_message",
            "enquiry",
            "inquiry",
            "query",
            "requirement",
            "requirements",
            "details",
            "description",
            "remarks",
            "notes",
        ),
        "message",
    ),
    "qty": "quantity",
    "budget": "order_value",
}
_FIRST_LAST = ("first_name", "last_name")
_JUNK_FIELD = re.compile(r"^_|captcha|turnstile|csrf|token|nonce|honeypot|^submit$|^action$")
MAX_FORM_SPECS = 50

FieldPlace = Literal["body", "query", "header"]  # where an invalid field was sent
FieldError = dict[str, str]  # field, in, pointer, detail: one entry of a problem's errors


def field_error(name: str, detail: str, where: FieldPlace = "body") -> FieldError:
    """One invalid field, as an RFC 9457 problem's ``errors`` lists it (a JSON pointer in a body)."""
    pointer = f"#/{name.replace('~', '~0').replace('/', '~1')}" if where == "body" else name
    return {"field": name, "in": where, "pointer": pointer, "detail": detail}


def check_lead(obj: Mapping[str, Any], names: Mapping[str, str] | None = None) -> list[FieldError]:
    """Every problem with a lead in the contract's field names, one entry per field.

    ``names`` maps a contract field to the name the client used (a form's ``mobile``), so the
    answer names the field as the client knows it. An empty list means the lead is fine.
    """
    names = names or {}
    errors: list[FieldError] = []

    def bad(key: str, detail: str) -> None:
        errors.append(field_error(names.get(key, key), detail))

    for key in INPUT_FIELDS:
        if key not in obj or obj[key] is None:
            continue
        value = obj[key]
        if key == "specs":
            if not isinstance(value, Mapping) or not all(
                isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
            ):
                bad(key, "must be an object of label: text pairs")
            continue
        if key == "verified":
            if not isinstance(value, list) or not all(
                v in ("phone", "email", "gst") for v in value
            ):
                bad(key, 'must be a list of "phone", "email" and "gst"')
            continue
        if isinstance(value, float) and not math.isfinite(value):
            bad(key, "must be text or a number")
            continue
        text = as_text(value)
        if text is None:
            bad(key, "must be text or a number")
            continue
        cleaned = clean_text(text)
        if cleaned is None:
            continue  # empty after cleaning: the same as absent
        if key in _PHONE_FIELDS and normalize_phone(cleaned) is None:
            bad(key, "is not a phone number leadtui can read (e.g. +919876543210 or 9876543210)")
        elif key in _EMAIL_FIELDS and normalize_email(cleaned) is None:
            bad(key, "is not an email address")
        elif key == "source" and cleaned.lower() not in SOURCES:
            bad(key, "must be one of " + ", ".join(sorted(SOURCES)))
        elif key == "received_at" and not is_iso_time(cleaned):
            bad(key, "must be an ISO-8601 time with a UTC offset, e.g. 2026-03-02T11:17:14+05:30")
        elif key == "pincode" and not re.fullmatch(r"[0-9]{6}", cleaned.replace(" ", "")):
            bad(key, "must be a 6-digit PIN code")
        elif key == "country" and iso_country(cleaned) is None:
            bad(key, "must be an ISO 3166 country code such as IN, or a country name")
        elif key == "call_duration" and not cleaned.isdigit():
            bad(key, "must be a whole number of seconds")
    present = any(
        (normalize_name(clean_text(as_text(obj.get(k)))) if k == "name" else None)
        or (k != "name" and clean_text(as_text(obj.get(k))))
        for k in REQUIRED_ONE_OF
    )
    if not present and not errors:
        for key in REQUIRED_ONE_OF:
            bad(key, "at least one of name, phone or email is required")
    return errors


def is_iso_time(text: str) -> bool:
    """Whether ``text`` is an ISO-8601 time with a UTC offset."""
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def lead_from_form(fields: Iterable[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """A website form's fields as a generic lead, and which form field gave each lead field.

    Known names and :data:`FORM_ALIASES` fill the contract's fields (the first non-empty value
    wins; a second phone becomes ``phone_alt``); ``first_name`` + ``last_name`` make the name;
    captcha, CSRF and other plumbing fields are dropped; the rest go to ``specs`` as labelled.
    """
    lead: dict[str, Any] = {}
    names: dict[str, str] = {}
    specs: dict[str, str] = {}
    first_last: dict[str, str] = {}
    for raw_name, raw_value in fields:
        value = raw_value.strip()
        lowered = raw_name.strip().lower()
        key = re.sub(r"[\s.\-]+", "_", lowered).strip("_[]")
        if not value or not key or _JUNK_FIELD.search(lowered) or _JUNK_FIELD.search(key):
            continue
        if key in _FIRST_LAST:
            first_last.setdefault(key, value)
            continue
        target = FORM_ALIASES.get(key)
        if target == "phone" and "phone" in lead and value != lead["phone"]:
            target = "phone_alt"  # a second, different number
        if target is not None and target not in lead:
            lead[target] = value
            names[target] = raw_name
        elif len(specs) < MAX_FORM_SPECS:
            label = raw_name.strip()[:100]
            specs[label] = f"{specs[label]}, {value}" if label in specs else value
    if "name" not in lead and first_last:
        lead["name"] = " ".join(first_last[k] for k in _FIRST_LAST if k in first_last)
        names["name"] = next(k for k in _FIRST_LAST if k in first_last)
    lead.setdefault("source", "website")
    if specs:
        lead["specs"] = specs
    return lead, names


def kept_as_json(lead: Mapping[str, Any], original: object = None) -> bytes:
    """The raw item for a request leadtui reads into a lead itself (a form, a WhatsApp hook).

    The pipeline reads generic lead JSON, so that is what is stored; the request as received
    rides along under :data:`ORIGINAL_KEY` (given here, or already in ``lead``), which the
    parser ignores, so nothing of it is lost.
    """
    data = {**lead, ORIGINAL_KEY: original} if original is not None else dict(lead)
    return json.dumps(without_lone_surrogates(data), ensure_ascii=False, sort_keys=True).encode()


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone UTF-16 surrogate (JSON's ``"\\ud83d"`` alone) as U+FFFD.

    JSON may carry half of an emoji; such a string cannot be encoded as UTF-8, so it cannot be
    stored. A pair decodes to one character and is kept; only the orphan is replaced. Keys and
    values of objects and lists are walked; anything else is returned as it is.
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, Mapping):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_lone_surrogates(v) for v in value]
    return value
