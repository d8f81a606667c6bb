"""Website forms and lead JSON sent to ``POST /api/leads``: field aliases and the lead contract check.

Pure payload → lead rules, beside the parser that reads the result: a form's fields, and a JSON
body in other names than the contract's (Zapier's Facebook lead ads: ``full_name``,
``phone_number``, a custom question), become a generic lead (FORMATS 8) by
:data:`FORM_ALIASES`; what has no alias is kept in ``specs``, never dropped. :func:`check_lead`
names every field of such a lead the parser could not use, so the HTTP ingest can refuse it
with one answer that lists them all. No I/O here: the ingest reads the request and answers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
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
    **dict.fromkeys(("work_phone_number", "work_phone"), "phone"),
    **dict.fromkeys(("alternate_phone", "alt_phone", "phone2", "mobile2"), "phone_alt"),
    **dict.fromkeys(
        ("e_mail", "email_address", "email_id", "your_email", "mail", "work_email"), "email"
    ),
    **dict.fromkeys(
        ("company_name", "organisation", "organization", "business_name", "firm"), "company"
    ),
    **dict.fromkeys(("town", "location"), "city"),
    **dict.fromkeys(("street_address", "street"), "address"),
    **dict.fromkeys(("province", "region"), "state"),
    **dict.fromkeys(
        ("pin", "pin_code", "zip", "zipcode", "zip_code", "postal_code", "post_code"), "pincode"
    ),
    **dict.fromkeys(
        ("interest", "interested_in", "product_name", "service", "services"), "product"
    ),
    **dict.fromkeys(
        (
            "comments",
            "comment",
            "your_comment",
            "your_comments",
            "additional_comments",
            "additional_information",
            "your_message",
            "msg",
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
    a question about the product is the product when no field names one; captcha, CSRF and
    other plumbing fields are dropped; the rest go to ``specs`` as labelled.
    """
    lead, names = _read_fields(
        ((name, value.strip()) for name, value in fields), {}, label=lambda n: n.strip()[:100]
    )
    lead.setdefault("source", "website")
    return lead, names


# Facebook lead ads (the Graph API lead, or Zapier's "New Lead" trigger): their own fields.
FACEBOOK_IDS = frozenset({"leadgen_id", "ad_id", "form_id"})  # any of these: source facebook
FACEBOOK_LABELS = {
    "leadgen_id": "Lead ID",
    "ad_id": "Ad ID",
    "ad_name": "Ad name",
    "adset_id": "Ad set ID",
    "adset_name": "Ad set name",
    "campaign_id": "Campaign ID",
    "campaign_name": "Campaign name",
    "form_id": "Form ID",
    "form_name": "Form name",
    "page_id": "Page ID",
    "page_name": "Page name",
    "created_time": "Created time",
    "is_organic": "Organic",
    "platform": "Platform",
}
_SET_BY_LEADTUI = frozenset({"kind", "channel"})  # FORMATS 1.1: leadtui sets them, not a client
_MAX_SPEC_VALUE = 1000


def lead_from_json(obj: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]] | None:
    """A JSON lead in other names than the contract's, as a generic lead; None if it needs none.

    A body in the contract's own field names (FORMATS 8) is read as it is: None. Any other
    field is not dropped: the contract's names are taken as sent (checked by :func:`check_lead`
    as before), then the form aliases, ``first_name`` + ``last_name`` and a question about the
    product apply as for a form, and what is left goes to ``specs`` under a readable label
    (``what_product_are_you_interested_in?`` → ``What product are you interested in?``).

    A body with Facebook's ``leadgen_id``, ``ad_id`` or ``form_id`` is ``source: facebook``
    unless it names its source: the lead id (``leadgen_id``, or ``id``) is the ``external_id``,
    so a lead Zapier sends twice is one lead; ``created_time`` is ``received_at``; the ad, form
    and campaign names and ids go to ``specs``. Facebook's ``field_data`` list (the Graph API's
    answers, ``[{"name": …, "values": […]}]``) is read as fields.
    """
    if all(key in INPUT_FIELDS or key in _SET_BY_LEADTUI for key in obj):
        return None
    lead: dict[str, Any] = {}
    names: dict[str, str] = {}
    rest: list[tuple[str, Any]] = []
    for raw_name, value in obj.items():
        if raw_name in _SET_BY_LEADTUI:
            continue
        if raw_name in INPUT_FIELDS:
            if value is not None and value != "":
                lead[raw_name] = value.strip() if isinstance(value, str) else value
                names[raw_name] = raw_name
        elif raw_name == "field_data" and _is_field_data(value):
            rest += [(str(d["name"]), _answers(d.get("values"))) for d in value]
        else:
            rest.append((raw_name, value))
    keys = {_field_key(name) for name, value in rest if spec_text(value)}
    facebook = not FACEBOOK_IDS.isdisjoint(keys)
    lead_id = "leadgen_id" if "leadgen_id" in keys else "id"  # the Graph API calls it id
    pairs: list[tuple[str, Any]] = []
    for raw_name, value in rest:
        key = _field_key(raw_name)
        text = spec_text(value)
        if facebook and key == lead_id and text and "external_id" not in lead:
            lead["external_id"], names["external_id"] = text, raw_name
        elif facebook and key == "created_time" and "received_at" not in lead and text:
            when = facebook_time(text)
            if when is None:
                pairs.append((raw_name, value))
            else:
                lead["received_at"], names["received_at"] = when, raw_name
        else:
            pairs.append((raw_name, value))
    given_specs = lead.get("specs")
    lead, names = _read_fields(
        pairs,
        lead,
        names=names,
        label=lambda name: FACEBOOK_LABELS.get(_field_key(name)) or readable_label(name),
        specs=dict(given_specs) if isinstance(given_specs, Mapping) else None,
    )
    if facebook:
        lead.setdefault("source", "facebook")
    return lead, names


def readable_label(name: str) -> str:
    """A field name as a spec label a salesperson reads: ``budget_in_rs`` → ``Budget in rs``.

    A name already written for people (with a space, or no ``_``) is kept as written.
    """
    text = name.strip()
    if "_" in text and " " not in text:
        text = " ".join(text.replace("_", " ").split())
        text = text[:1].upper() + text[1:]
    return text[:100]


PRODUCT_QUESTION = re.compile(r"product|^what_.*interested_in")


def _read_fields(
    fields: Iterable[tuple[str, Any]],
    lead: dict[str, Any],
    *,
    label: Callable[[str], str],
    names: dict[str, str] | None = None,
    specs: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Add ``fields`` (name, value) to ``lead`` by the form rules; the rest to its ``specs``.

    A contract field ``lead`` has already is not replaced; a value that is not text (a JSON
    object under ``mobile``) is put in its field as it is, for :func:`check_lead` to name.
    """
    names = {} if names is None else names
    specs = {} if specs is None else specs
    first_last: dict[str, str] = {}
    questions: list[tuple[str, str]] = []  # (name, answer) of questions about the product
    for raw_name, raw_value in fields:
        value = raw_value.strip() if isinstance(raw_value, str) else raw_value
        lowered = raw_name.strip().lower()
        key = _field_key(raw_name)
        text = spec_text(value)
        if not text or not key or _JUNK_FIELD.search(lowered) or _JUNK_FIELD.search(key):
            continue
        if key in _FIRST_LAST and isinstance(value, str):
            first_last.setdefault(key, value)
            continue
        target = FORM_ALIASES.get(key)
        if target == "phone" and "phone" in lead and value != lead["phone"]:
            target = "phone_alt"  # a second, different number
        if target is not None and target not in lead:
            lead[target] = value
            names[target] = raw_name
        elif target is None and PRODUCT_QUESTION.search(key):
            questions.append((raw_name, text))
        elif len(specs) < MAX_FORM_SPECS:
            add_spec(specs, label(raw_name), text)
    for raw_name, answer in questions:
        if "product" not in lead:
            lead["product"] = answer
            names["product"] = raw_name
        elif len(specs) < MAX_FORM_SPECS:
            add_spec(specs, label(raw_name), answer)
    if "name" not in lead and first_last:
        lead["name"] = " ".join(first_last[k] for k in _FIRST_LAST if k in first_last)
        names["name"] = next(k for k in _FIRST_LAST if k in first_last)
    if specs:
        lead["specs"] = specs
    return lead, names


def add_spec(specs: dict[str, Any], label: str, value: str) -> None:
    specs[label] = f"{specs[label]}, {value}" if label in specs else value


def _field_key(name: str) -> str:
    """A field name as the aliases know it: lower-case, "-", "." and spaces read as "_"."""
    return re.sub(r"[\s.\-]+", "_", name.strip().lower()).strip("_[]")


def spec_text(value: Any) -> str | None:
    """A JSON value as the text of a spec: lists joined, an object as compact JSON (at most
    :data:`_MAX_SPEC_VALUE` characters of it); None if empty."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        text = ", ".join(t for t in (spec_text(v) for v in value[:MAX_FORM_SPECS]) if t)
    elif isinstance(value, Mapping):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))[:_MAX_SPEC_VALUE]
    else:
        text = as_text(value) or ""
    return text.strip() or None


def _is_field_data(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= MAX_FORM_SPECS
        and all(isinstance(d, Mapping) and isinstance(d.get("name"), str) for d in value)
    )


def _answers(values: object) -> str:
    """The answer of one ``field_data`` entry: its ``values``, joined."""
    return spec_text(values) or ""


def facebook_time(text: str) -> str | None:
    """Facebook's ``created_time`` (ISO 8601, ``+0000`` offsets, or Unix seconds) as FORMATS
    2.4 writes a time; None when it is not one."""
    try:
        if text.isascii() and text.isdigit():
            seconds = int(text)
            when = datetime.fromtimestamp(seconds / 1000 if seconds > 10**11 else seconds, UTC)
        else:
            when = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    if when.tzinfo is None:
        return None
    return when.isoformat(timespec="seconds")


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
