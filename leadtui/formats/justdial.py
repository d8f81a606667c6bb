"""JustDial's lead push: the fields it sends, as a lead in the contract (FORMATS 1.1).

JustDial calls a URL the seller registers, usually a ``GET`` with the lead in the query string,
on some accounts a ``POST`` of the same names (a form or JSON). Nothing here comes from
JustDial's own documentation, which is not public: the field names and their meanings are those
the public receivers read (honeytech123/webhook-justdial, Dineshkr23/justdial-lead-processing-
service; see CHANNELS.md): ``leadid, leadtype, prefix, name, mobile, phone, email, date, time,
category, city, area, brancharea, dncmobile, dncphone, company, pincode, branchpin, parentid``.

The HTTP ingest keeps each request as a raw item made by :func:`kept` (the fields it read and
the request as it came), and the parser reads it back with :func:`parse_justdial`: pure, and a
reparse after a fix reads the same lead. What has no lead field is kept in ``specs`` under a
readable label, never dropped. A lead JustDial cannot be told apart from a repeat of (no
``leadid``), one nobody can reach (no mobile, phone or email), or a value no person typed (a
field longer than :data:`MAX_VALUE`) is an ``error``: the raw item waits in the review queue.

``dncmobile`` / ``dncphone`` = 1 says that number is on India's do-not-call registry: the number
is listed under :data:`DNC_LABEL` in ``specs``, where the table, the detail and the call key
(:func:`do_not_call`) find it without a schema change.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from leadtui.formats.results import NotUnderstood, Result, finish_lead, new_lead
from leadtui.formats.text import (
    IST,
    api_time,
    as_text,
    clean_text,
    first_two,
    normalize_email,
    normalize_name,
    normalize_phone,
)
from leadtui.formats.website_form import readable_label, without_lone_surrogates

SOURCE = "justdial"
ENVELOPE_KEY = "justdial"  # in a raw item the ingest made: the fields read from the request
REQUEST_KEY = "request"  # … and the request as it came (method, query, body)
UNREADABLE_KEY = "unreadable"  # … or why no fields could be read from it

FIELDS = (
    "leadid",
    "leadtype",
    "prefix",
    "name",
    "mobile",
    "phone",
    "email",
    "date",
    "time",
    "category",
    "city",
    "area",
    "brancharea",
    "dncmobile",
    "dncphone",
    "company",
    "pincode",
    "branchpin",
    "parentid",
)
# The fields with no lead field of their own: kept in specs under these labels.
SPEC_LABELS = {
    "leadtype": "Lead type",  # "company": the buyer looked up this business; "category": a search
    "prefix": "Title",
    "brancharea": "Branch area",
    "branchpin": "Branch PIN",
    "parentid": "Parent ID",
}
DNC_LABEL = "Do not call"
MAX_VALUE = 1000  # characters of one field: JustDial's own values are short
MAX_ID = 100  # characters of a leadid
MAX_SPECS = 50  # unknown fields kept in specs
_TRUE = frozenset({"1", "true", "yes", "y"})


# ---------------------------------------------------------------- the raw item


def kept(
    fields: Sequence[tuple[str, Any]] | None, request: Mapping[str, Any], why: str = ""
) -> bytes:
    """The raw item for one JustDial request: the fields read, and the request as it came.

    ``fields`` are (name, value) pairs in the order received (None: the request could not be
    read, ``why`` says how). The first non-empty value of a name counts. Deterministic, so
    the same request sent again is the same bytes (and the same raw item).
    """
    data: dict[str, Any] = {REQUEST_KEY: dict(request)}
    if fields is None:
        data[ENVELOPE_KEY] = None
        data[UNREADABLE_KEY] = why or "no fields could be read"
    else:
        read: dict[str, Any] = {}
        for name, value in fields:
            if name not in read or read[name] in (None, ""):
                read[name] = value
        data[ENVELOPE_KEY] = read
    return json.dumps(without_lone_surrogates(data), ensure_ascii=False, sort_keys=True).encode()


def dedupe_key(fields: Sequence[tuple[str, Any]] | None) -> str | None:
    """``justdial:<leadid>``: JustDial sending a lead again is the same raw item. None when
    the request has no usable leadid (its bytes still dedupe it)."""
    for name, value in fields or ():
        if str(name).strip().lower() == "leadid":
            lead_id = clean_text(_text(value))
            if lead_id and len(lead_id) <= MAX_ID:
                return f"justdial:{lead_id}"
    return None


def body_text(body: bytes) -> dict[str, str]:
    """A request body as JSON can keep it: its text, or base64 when it is not UTF-8."""
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode("ascii")}


# ---------------------------------------------------------------- the parser


def is_justdial(obj: Mapping[str, Any]) -> bool:
    return ENVELOPE_KEY in obj and REQUEST_KEY in obj


def parse_justdial(obj: Mapping[str, Any], channel: str) -> Result:
    """A raw item made by :func:`kept` → one JustDial lead; NotUnderstood for review."""
    fields = obj.get(ENVELOPE_KEY)
    if not isinstance(fields, Mapping):
        why = clean_text(as_text(obj.get(UNREADABLE_KEY))) or "the request carried no fields"
        raise NotUnderstood(f"JustDial request not understood: {why}; kept for review")
    known, unknown = _split(fields)
    lead = new_lead(SOURCE, channel)
    lead["external_id"] = _lead_id(known.get("leadid"))
    specs: dict[str, str] = {}
    lead["name"] = normalize_name(known.get("name"))
    lead["company"] = known.get("company")
    mobile, phone = known.get("mobile"), known.get("phone")
    numbers = (normalize_phone(mobile), normalize_phone(phone))
    lead["phone"], lead["phone_alt"] = first_two(numbers)
    lead["email"] = normalize_email(known.get("email"))
    lead["city"] = known.get("city")
    lead["address"] = known.get("area")  # the buyer's locality: "Andheri East"
    lead["category"] = lead["product"] = known.get("category")
    pincode = (known.get("pincode") or "").replace(" ", "")
    lead["pincode"] = pincode if re.fullmatch(r"[0-9]{6}", pincode) else None
    lead["received_at"] = justdial_time(known.get("date"), known.get("time"))
    for name, label in SPEC_LABELS.items():
        if known.get(name):
            specs[label] = known[name]
    # Nothing sent is dropped: a value that is not usable as its field stays in specs.
    for name, label, used in (
        ("mobile", "Mobile", numbers[0]),
        ("phone", "Phone", numbers[1]),
        ("email", "Email", lead["email"]),
        ("pincode", "PIN code", lead["pincode"]),
        ("date", "Date", lead["received_at"]),
        ("time", "Time", lead["received_at"]),
    ):
        if known.get(name) and not used:
            specs[label] = known[name]
    marked = [
        numbers[i] or known[name]
        for i, (name, flag) in enumerate((("mobile", "dncmobile"), ("phone", "dncphone")))
        if _yes(known.get(flag)) and known.get(name)
    ]
    if marked:
        specs[DNC_LABEL] = ", ".join(dict.fromkeys(marked))
    for label, value in unknown[:MAX_SPECS]:
        specs.setdefault(label, value)
    lead["specs"] = specs
    if not any(lead[key] for key in ("phone", "phone_alt", "email")):
        raise NotUnderstood(
            f"JustDial lead {lead['external_id']} with no mobile, phone or email that leadtui "
            "can read: nobody could answer it; kept for review"
        )
    return finish_lead(lead)


def _split(fields: Mapping[Any, Any]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """JustDial's own fields (names matched case-insensitively) as clean text, and the rest
    as (readable label, text) pairs. A value too long for a person to have typed, or a known
    field that is not text, is NotUnderstood: the item goes to review, not into the table."""
    known: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    for raw_name, raw_value in fields.items():
        name = str(raw_name).strip().lower()
        text = _text(raw_value)
        if text is not None and len(text) > MAX_VALUE:
            shown = clean_text(str(raw_name)[:40]) or "?"
            raise NotUnderstood(
                f"JustDial request whose field {shown!r} has {len(text):,} characters (at most "
                f"{MAX_VALUE:,}): not a lead anyone typed; kept for review"
            )
        if name in FIELDS:
            if raw_value is not None and text is None:
                raise NotUnderstood(
                    f"JustDial request whose field {name!r} is a {type(raw_value).__name__}, "
                    "not text; kept for review"
                )
            value = clean_text(text)
            if value and not known.get(name):
                known[name] = value
        elif (value := clean_text(text)) and (label := clean_text(readable_label(str(raw_name)))):
            unknown.append((label, value))
    return known, unknown


def _text(value: object) -> str | None:
    """A field's value as text: scalars as written, a list or object as compact JSON."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return as_text(value)


def _lead_id(value: str | None) -> str:
    if not value:
        raise NotUnderstood(
            "JustDial lead without a leadid: a lead without JustDial's id cannot be told from "
            "a repeat; kept for review"
        )
    if len(value) > MAX_ID:
        raise NotUnderstood(f"JustDial leadid of {len(value)} characters (at most {MAX_ID})")
    return value


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


# ---------------------------------------------------------------- date and time (IST)

_YMD = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DMY = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:([AaPp])\.?[Mm]\.?)?")


def justdial_time(date: str | None, clock: str | None) -> str | None:
    """JustDial's ``date`` and ``time`` (no zone: India's time) as ISO-8601 with ``+05:30``.

    The receivers read ``date`` as ISO (``2026-03-02``) and ``time`` as ``HH:MM:SS``; day-first
    dates (``02-03-2026``, ``02/03/2026``) and ``02-Mar-2026`` are read too. None when the
    date cannot be read (the time alone says nothing); the values then stay in specs.
    """
    if not date or len(date) > 40 or (clock and len(clock) > 20):
        return None
    if not clock and (whole := api_time(date)):
        return whole  # a date that carries its time
    clock = clock or "00:00:00"
    if ymd := _YMD.fullmatch(date):
        year, month, day = int(ymd[1]), int(ymd[2]), int(ymd[3])
    elif dmy := _DMY.fullmatch(date):
        year, month, day = int(dmy[3]), int(dmy[2]), int(dmy[1])
    else:
        return api_time(f"{date} {clock}")  # 02-Mar-2026 11:17:14
    time_match = _CLOCK.fullmatch(clock.strip())
    if time_match is None:
        return None
    hour, minute, second = int(time_match[1]), int(time_match[2]), int(time_match[3] or 0)
    if time_match[4] and hour <= 12:
        hour = hour % 12 + (12 if time_match[4].lower() == "p" else 0)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=IST).isoformat()
    except ValueError:
        return None


# ---------------------------------------------------------------- do not call


def do_not_call(specs: Mapping[str, str]) -> frozenset[str]:
    """The numbers of a lead marked do-not-call (``specs[DNC_LABEL]``): none for most leads."""
    listed = specs.get(DNC_LABEL)
    if not listed:
        return frozenset()
    return frozenset(n for n in (part.strip() for part in listed.split(",")) if n)
