"""Generic lead JSON that already uses the contract's field names (FORMATS 8).

Website forms, WhatsApp bridges and imports send these through the HTTP API. Values get
the normalisation of FORMATS 2.2-2.5; nothing is inferred (no country from a state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadtui.formats.places import iso_country, state_name
from leadtui.formats.requirement import apply_pairs
from leadtui.formats.results import (
    LEAD_FIELDS,
    SOURCES,
    NotUnderstood,
    Result,
    finish_lead,
    new_lead,
)
from leadtui.formats.text import (
    as_text,
    first_two,
    normalize_email,
    normalize_name,
    normalize_phone,
    small_int,
    text_reader,
)

KNOWN_FIELDS = frozenset(LEAD_FIELDS) - {"kind", "channel"}
_IDENTIFYING = ("name", "phone", "email", "company", "product", "message", "external_id")
_AS_GIVEN = (
    "external_id",
    "query_type",
    "received_at",
    "company",
    "address",
    "city",
    "product",
    "category",
    "order_value",
    "requirement_type",
    "message_id",
    "member_since",
)


def is_generic(obj: Mapping[str, Any]) -> bool:
    return not KNOWN_FIELDS.isdisjoint(obj)


def parse_generic(obj: Mapping[str, Any], channel: str) -> Result:
    get = text_reader(obj)

    source = (get("source") or "other").lower()
    lead = new_lead(source if source in SOURCES else "other", channel)
    for key in _AS_GIVEN:
        lead[key] = get(key)
    lead["name"] = normalize_name(get("name"))
    lead["phone"], lead["phone_alt"] = first_two(
        normalize_phone(get(key)) for key in ("phone", "phone_alt")
    )
    lead["email"], lead["email_alt"] = first_two(
        normalize_email(get(key)) for key in ("email", "email_alt")
    )
    lead["receiver_phone"] = normalize_phone(get("receiver_phone"))
    pincode = (get("pincode") or "").replace(" ", "")
    lead["pincode"] = (
        pincode if len(pincode) == 6 and pincode.isascii() and pincode.isdigit() else None
    )
    lead["state"] = state_name(get("state")) or get("state")
    lead["country"] = iso_country(get("country"))
    pairs = [("Quantity", get("quantity") or ""), ("Unit", get("unit") or "")]
    specs = obj.get("specs")
    if isinstance(specs, Mapping):
        pairs += [(str(label), as_text(value) or "") for label, value in list(specs.items())[:100]]
    apply_pairs(lead, pairs)
    lead["message"] = as_text(obj.get("message"))
    lead["call_duration"] = small_int(get("call_duration"))
    verified = obj.get("verified")
    if isinstance(verified, list):
        lead["verified"] = [mark for mark in verified[:10] if isinstance(mark, str)]
    if not any(lead[key] for key in _IDENTIFYING):
        raise NotUnderstood(
            "lead JSON without a name, phone, email, company, product, message or external_id"
        )
    return finish_lead(lead)
